import AsyncHTTPClient
import ConveyorCore
import ConveyorEmbedded
import ConveyorTesting
import Foundation
import NIOCore
import Testing

/// Runs the real `conveyor` binary, as an operator would, and reads what it writes to stdout.
@Suite("JSON logs and the correlation id")
struct LogCorrelationTests {
    private static let binary = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/debug/conveyor").path

    @Test("every line of a coordinator and an agent is JSON, and one task's correlation id shows in both")
    func correlationIDFollowsTheTask() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build the conveyor binary first: swift build")
        let environment = try await TestServers.shared.environment(name: "logs")
        let directory = try await LocalProcess.makeDirectory(prefix: "conveyor-logs", ownedByPostgres: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try LocalProcess.freePort()
        let common = [
            "CONVEYOR_REDIS_URL": environment.redisServer.url, "CONVEYOR_REDIS_PREFIX": environment.keys.prefix,
            "CONVEYOR_LOG_FORMAT": "json", "CONVEYOR_LOG_LEVEL": "info", "CONVEYOR_TASK_LOG_SAMPLE": "1",
        ]
        let coordinator = try await ChildProcess.start(
            executable: Self.binary, arguments: ["coordinator"], workingDirectory: nil, logPath: "\(directory)/coordinator.log",
            environment: common.merging([
                "CONVEYOR_POSTGRES_URL": environment.postgres.url, "CONVEYOR_HTTP_PORT": String(port), "CONVEYOR_API_TOKENS": "t",
                "CONVEYOR_INSTANCE_ID": "log-coordinator",
            ]) { _, new in new })
        let agent = try await ChildProcess.start(
            executable: Self.binary, arguments: ["agent"], workingDirectory: nil, logPath: "\(directory)/agent.log",
            environment: common.merging(["CONVEYOR_AGENT_ID": "log-agent"]) { _, new in new })
        defer {
            coordinator.signal(SIGKILL)
            agent.signal(SIGKILL)
        }

        let base = "http://127.0.0.1:\(port)"
        var ready = false
        for _ in 0..<300 where !ready {
            var probe = HTTPClientRequest(url: base + "/ready")
            probe.method = .GET
            ready = (try? await HTTPClient.shared.execute(probe, timeout: .seconds(2)))?.status.code == 200
            if !ready { try await Task.sleep(for: .milliseconds(100)) }
        }
        try #require(ready, "the coordinator did not become ready")

        let correlationID = "trace-\(UInt32.random(in: 0...UInt32.max))"
        var submit = HTTPClientRequest(url: base + "/v1/tasks")
        submit.method = .POST
        submit.headers.add(name: "Authorization", value: "Bearer t")
        submit.headers.add(name: "Content-Type", value: "application/json")
        submit.headers.add(name: "X-Correlation-ID", value: correlationID)
        submit.body = .bytes(ByteBuffer(string: #"{"type":"noop"}"#))
        let response = try await HTTPClient.shared.execute(submit, timeout: .seconds(10))
        #expect(response.status.code == 201)
        #expect(response.headers.first(name: "X-Correlation-ID") == correlationID)

        // Until both processes have written their line about the task.
        var coordinatorLines: [String] = []
        var agentLines: [String] = []
        for _ in 0..<200 {
            coordinatorLines = Self.lines(of: "\(directory)/coordinator.log")
            agentLines = Self.lines(of: "\(directory)/agent.log")
            if coordinatorLines.contains(where: { $0.contains(correlationID) }) && agentLines.contains(where: { $0.contains(correlationID) }) { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        coordinator.signal(SIGTERM)
        agent.signal(SIGTERM)
        for _ in 0..<200 where coordinator.isRunning || agent.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        coordinatorLines = Self.lines(of: "\(directory)/coordinator.log")
        agentLines = Self.lines(of: "\(directory)/agent.log")

        for (service, lines) in [("coordinator", coordinatorLines), ("agent", agentLines)] {
            #expect(!lines.isEmpty)
            for line in lines {
                let json = try? JSONValue.parse(line)
                #expect(json != nil, "\(service) wrote a line that is not JSON: \(line)")
                #expect(json?["service"]?.stringValue == service, "\(line)")
                #expect(json?["level"]?.stringValue != nil && json?["msg"]?.stringValue != nil, "\(line)")
                let ts = json?["ts"]?.stringValue ?? ""
                #expect(ts.contains("T") && ts.contains(".") && ts.hasSuffix("Z"), "ts is RFC 3339 with fractional seconds: \(ts)")
            }
            let about = lines.compactMap { try? JSONValue.parse($0) }.filter { $0["correlation_id"]?.stringValue == correlationID }
            #expect(!about.isEmpty, "\(service) has no line with the task's correlation id")
            #expect(about.allSatisfy { $0["task_id"] != nil }, "lines about the task name it")
        }
    }

    private static func lines(of path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }
}
