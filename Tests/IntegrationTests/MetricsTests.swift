import AsyncHTTPClient
import ConveyorAgent
import ConveyorCore
import ConveyorEmbedded
import ConveyorTesting
import Foundation
import NIOCore
import Testing

@Suite("Prometheus metrics")
struct MetricsTests {
    private let registry = TaskTypeRegistry([
        TaskTypeDefinition(name: "work", maxConcurrent: 10, maxAttempts: 3, handler: "noop"),
        TaskTypeDefinition(name: "flaky", maxConcurrent: 10, maxAttempts: 3, handler: "fail", backoffBase: .milliseconds(10), backoffMax: .milliseconds(20)),
    ])

    /// Runs `promtool check metrics` on a scrape; returns its exit status and output.
    private func promtoolCheck(_ text: String) async throws -> (status: Int32, output: String) {
        try await ToolRun.run(["promtool", "check", "metrics"], input: Array(text.utf8))
    }

    @Test("the coordinator's /metrics after a load passes promtool check metrics and names every outcome")
    func coordinatorScrapePassesPromtool() async throws {
        let stack = try await Stack.start(registry: registry, agents: 1)
        var ids: [Int64] = []
        for _ in 0..<20 { ids.append(try await stack.submit("work")) }
        for _ in 0..<5 { ids.append(try await stack.submit("flaky", params: "{\"times\":1}")) }
        _ = try await stack.waitUntilTerminal(ids)
        _ = try await stack.get("/v1/tasks/\(ids[0])")

        let scrape = try await stack.request(.GET, "/metrics", token: nil)
        #expect(scrape.status == 200)
        #expect(scrape.headers.first(name: "Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
        let check = try await promtoolCheck(scrape.body)
        #expect(check.status == 0, "promtool: \(check.output)")
        for expected in [
            #"conveyor_tasks_submitted_total{type="work"}"#,
            #"conveyor_tasks_completed_total{type="work",outcome="succeeded"}"#,
            #"conveyor_tasks_completed_total{type="flaky",outcome="retrying"}"#,
            #"conveyor_task_retries_total{type="flaky"}"#,
            #"conveyor_enqueue_duration_seconds_bucket{endpoint="single""#,
            #"conveyor_http_requests_total{route="/v1/tasks/{id}",method="GET",status="200"}"#,
            #"conveyor_queue_ready{queue="default"}"#, "conveyor_agents_live", "conveyor_recorder_lag_seconds",
            "conveyor_task_run_seconds_bucket", "conveyor_task_end_to_end_seconds_bucket", "conveyor_postgres_copy_rows_total",
            "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
            #"conveyor_redis_pipeline_commands_bucket{connection="coordinator-redis""#, "conveyor_redis_roundtrip_seconds_bucket",
        ] {
            #expect(scrape.body.contains(expected), "missing \(expected)")
        }
        try await stack.stop()
    }

    @Test("/metrics is gzip-compressed when the scraper asks for it")
    func gzipWhenAsked() async throws {
        let stack = try await Stack.start(agents: 0)
        _ = try await stack.request(.GET, "/metrics", token: nil)  // at least one request is counted
        var request = HTTPClientRequest(url: stack.baseURL + "/metrics")
        request.headers.add(name: "Accept-Encoding", value: "gzip")
        // HTTPClient.shared inflates gzip bodies itself: a plain client sees the bytes as sent.
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let response = try await client.execute(request, timeout: .seconds(10))
        #expect(response.headers.first(name: "Content-Encoding") == "gzip")
        let compressed = Array(buffer: try await response.body.collect(upTo: 16 << 20))
        try await client.shutdown()
        #expect(compressed.starts(with: [0x1f, 0x8b]), "a gzip member")
        let gunzip = try await ToolRun.run(["gzip", "-dc"], input: compressed)
        #expect(gunzip.status == 0)
        let text = gunzip.output
        #expect(text.contains("# HELP conveyor_http_requests_total"))
        try await stack.stop()
    }

    @Test("an agent serves /metrics on its metrics port, and promtool accepts it")
    func agentScrapePassesPromtool() async throws {
        let stack = try await Stack.start(registry: registry, agents: 0)
        let port = try LocalProcess.freePort()
        var handlers = HandlerSet.builtIns
        handlers.register("work") { _ in nil }
        let agent = try stack.startAgent(id: "scraped", registry: registry, handlers: handlers, metricsPort: port)
        let id = try await stack.submit("work")
        _ = try await stack.waitUntilTerminal([id])
        var scrape = ""
        for _ in 0..<50 where scrape.isEmpty {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/metrics")
            request.method = .GET
            if let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(5)) {
                scrape = String(buffer: try await response.body.collect(upTo: 16 << 20))
            } else {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        #expect(scrape.contains(#"conveyor_agent_tasks_in_flight{agent="scraped"}"#))
        let check = try await promtoolCheck(scrape)
        #expect(check.status == 0, "promtool: \(check.output)")
        try await agent.stop()
        try await stack.stop()
    }
}
