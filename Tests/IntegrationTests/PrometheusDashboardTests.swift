import AsyncHTTPClient
import ConveyorAgent
import ConveyorCore
import ConveyorEmbedded
import ConveyorTesting
import Foundation
import NIOCore
import Testing

/// A real Prometheus (Debian's `prometheus`) scrapes a coordinator and an agent under load; then every
/// expression of every panel of the overview dashboard is evaluated through Prometheus' HTTP API.
@Suite("Dashboards against a real Prometheus")
struct PrometheusDashboardTests {
    private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    private let registry = TaskTypeRegistry([
        TaskTypeDefinition(name: "work", maxConcurrent: 10, maxAttempts: 3, handler: "noop"),
        TaskTypeDefinition(name: "flaky", maxConcurrent: 10, maxAttempts: 3, handler: "fail", backoffBase: .milliseconds(10), backoffMax: .milliseconds(20)),
    ])

    @Test("every panel expression of the overview dashboard evaluates without error and returns series")
    func everyPanelReturnsSeries() async throws {
        let prometheusBinary = try #require(["/usr/bin/prometheus", "/usr/local/bin/prometheus"].first { FileManager.default.isExecutableFile(atPath: $0) },
                                            "install Debian's prometheus package (scripts/install-deps.sh does)")
        let stack = try await Stack.start(registry: registry, agents: 0)
        let agentPort = try LocalProcess.freePort()
        var handlers = HandlerSet.builtIns
        handlers.register("work") { _ in nil }
        let agent = try stack.startAgent(id: "dashboard-agent", registry: registry, handlers: handlers, metricsPort: agentPort)

        let directory = try await LocalProcess.makeDirectory(prefix: "conveyor-prometheus", ownedByPostgres: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let coordinatorPort = try #require(URL(string: stack.baseURL)?.port)
        let prometheusPort = try LocalProcess.freePort()
        try """
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            rule_files: ["\(Self.root.path)/Grafana/prometheus/alerts.yml"]
            scrape_configs:
              - job_name: conveyor-coordinator
                static_configs: [{targets: ["127.0.0.1:\(coordinatorPort)"]}]
              - job_name: conveyor-agent
                static_configs: [{targets: ["127.0.0.1:\(agentPort)"]}]
            """.write(toFile: "\(directory)/prometheus.yml", atomically: true, encoding: .utf8)
        let prometheus = try await ChildProcess.start(
            executable: prometheusBinary,
            arguments: [
                "--config.file=\(directory)/prometheus.yml", "--storage.tsdb.path=\(directory)/data",
                "--web.listen-address=127.0.0.1:\(prometheusPort)",
            ],
            workingDirectory: directory, logPath: "\(directory)/prometheus.log")
        defer { prometheus.signal(SIGKILL) }

        // Load while Prometheus scrapes: successes, retries and a dead letter.
        let loadEnds = ContinuousClock.now + .seconds(8)
        var ids: [Int64] = []
        while ContinuousClock.now < loadEnds {
            for _ in 0..<10 { ids.append(try await stack.submit("work")) }
            ids.append(try await stack.submit("flaky", params: "{\"times\":1}"))
            ids.append(try await stack.submit("flaky", params: "{\"times\":5}"))
            // A workflow too, for the workflow row: a chain whose second step waits on the first.
            let workflow = try await stack.post("/v1/workflows", #"{"name":"dash","chain":[{"type":"work"},{"type":"work"}]}"#)
            ids += workflow.json?["nodes"].flatMap { json -> [Int64]? in
                guard case .object(let nodes) = json else { return nil }
                return nodes.values.compactMap(\.intValue)
            } ?? []
            try await Task.sleep(for: .milliseconds(200))
        }
        _ = try await stack.waitUntilTerminal(ids)
        try await Task.sleep(for: .seconds(3))  // a few more scrapes after the last outcome

        let data = try Data(contentsOf: Self.root.appendingPathComponent("Grafana/dashboards/conveyor-overview.json"))
        let dashboard = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        var evaluated = 0
        for panel in dashboard["panels"] as? [[String: Any]] ?? [] {
            for target in panel["targets"] as? [[String: Any]] ?? [] {
                let expr = try #require(target["expr"] as? String)
                let result = try await query(expr, port: prometheusPort)
                #expect(result.status == "success", "\(panel["title"] ?? ""): \(expr) → \(result.error ?? "")")
                #expect(result.series > 0, "\(panel["title"] ?? ""): \(expr) returned no series")
                evaluated += 1
            }
        }
        #expect(evaluated >= 20)
        try await agent.stop()
        try await stack.stop()
    }

    private func query(_ expr: String, port: Int) async throws -> (status: String, series: Int, error: String?) {
        var components = URLComponents(string: "http://127.0.0.1:\(port)/api/v1/query")!
        components.queryItems = [URLQueryItem(name: "query", value: expr)]
        let url = components.url!.absoluteString.replacingOccurrences(of: "+", with: "%2B")
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 16 << 20)
        let json = try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any] ?? [:]
        let result = (json["data"] as? [String: Any])?["result"] as? [Any] ?? []
        return (json["status"] as? String ?? "?", result.count, json["error"] as? String)
    }
}
