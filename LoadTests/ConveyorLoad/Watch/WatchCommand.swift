import ArgumentParser
import AsyncHTTPClient
import ConveyorCore
import Foundation
import NIOCore

/// `conveyor-load watch`: many callers following their tasks at once, against a real coordinator
/// process: `--streams` Server-Sent Event streams and `--waits` long-polls (`?wait=60s`) over tasks that
/// each run `--task-ms`. Passes when every stream ends with the task's terminal step and every wait
/// answers with it; reports the coordinator's CPU and memory while they are open.
struct WatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Open many live streams and long-polls on one coordinator; report its CPU and memory.",
        discussion: "Exit status: 0 when every stream and wait saw its task finish; 1 otherwise.")

    @Option(help: "Live streams (GET /v1/tasks/{id}/stream), one per task.") var streams = 1000
    @Option(help: "Long-polls (GET /v1/tasks/{id}?wait=60s), one per task (the streams' tasks).") var waits = 1000
    @Option(help: "How long each task runs, in ms.") var taskMs = 5000
    @Option(help: "The conveyor binary (default: next to conveyor-load).") var conveyor: String?
    @Flag(help: "Keep the embedded stack's folder (logs, data).") var keep = false

    func run() async throws {
        let binary = conveyor ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("conveyor").path
        let tasks = max(streams, waits)
        guard tasks > 0, taskMs >= 0 else { throw ValidationError("--streams or --waits must be positive, --task-ms not negative") }
        let registryPath = NSTemporaryDirectory() + "conveyor-watch-\(getpid()).yaml"
        try """
            types:
              sleep:
                handler: sleep
                max_concurrent: unlimited
                max_concurrent_per_agent: \(tasks)
            """.write(toFile: registryPath, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: registryPath) }
        print("conveyor-load: starting Redis, PostgreSQL, a coordinator and an agent…")
        let stack = try await LoadStack.start(
            conveyor: binary, agents: 1, agentConcurrency: tasks, redisURL: nil, environment: ["CONVEYOR_TASK_TYPES": registryPath])
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(
            connectionPool: .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: streams + waits + 16)))
        var passed = false
        do {
            passed = try await measure(stack: stack, client: client, tasks: tasks)
        } catch {
            print("conveyor-load watch: \(error)")
        }
        try? await client.shutdown()
        await stack.shutdown(keep: keep)
        if !passed { throw ExitCode(1) }
    }

    private func measure(stack: LoadStack, client: HTTPClient, tasks: Int) async throws -> Bool {
        let api = WatchClient(baseURL: stack.baseURL, token: LoadStack.token, client: client)
        let idle = ProcessSampler(processes: { stack.watched.filter { $0.name == "coordinator" } })
        idle.sample()
        try await Task.sleep(for: .seconds(1))
        idle.sample()
        let before = idle.usage.first
        var ids: [Int64] = []
        while ids.count < tasks {
            ids += try await api.submit(count: min(500, tasks - ids.count), taskMs: taskMs)
        }
        let sampler = ProcessSampler(processes: { stack.watched.filter { $0.name == "coordinator" } })
        let clock = ContinuousClock()
        let started = clock.now
        let (streamsEnded, waitsAnswered) = await withTaskGroup(of: (Bool, Bool)?.self) { group in
            group.addTask {
                await sampler.run()
                return nil
            }
            for (index, id) in ids.enumerated() {
                if index < streams { group.addTask { (await api.followsToTheEnd(id), false) } }
                if index < waits { group.addTask { (false, await api.waitsForTheEnd(id)) } }
            }
            var streamsEnded = 0, waitsAnswered = 0, finished = 0
            while let result = await group.next() {
                guard let (stream, wait) = result else { continue }
                if stream { streamsEnded += 1 }
                if wait { waitsAnswered += 1 }
                finished += 1
                if finished == streams + waits { group.cancelAll() }
            }
            return (streamsEnded, waitsAnswered)
        }
        let elapsed = clock.now - started
        sampler.sample()
        let usage = sampler.usage.first
        let passed = streamsEnded == streams && waitsAnswered == waits
        print("""

            ── conveyor-load watch ──
            watchers                  \(streams) live streams + \(waits) long-polls on \(tasks) tasks of \(taskMs) ms, one coordinator
            streams ended             \(streamsEnded) of \(streams) with the task's terminal step
            waits answered            \(waitsAnswered) of \(waits) with the terminal task
            all done after            \(String(format: "%.1f", elapsed.seconds)) s
            coordinator CPU           \(usage.map { String(format: "%.1f %% of one core on average while they were open", $0.cpuPercent) } ?? "n/a")
            coordinator memory        \(before.map { String(format: "%.1f MiB before", $0.residentMiB) } ?? "n/a"), \
            \(usage.map { String(format: "%.1f MiB peak with them open", $0.peakResidentMiB) } ?? "n/a")
            result                    \(passed ? "PASS" : "FAIL")
            """)
        return passed
    }
}

/// The few calls `watch` makes, on a client with a connection per watcher.
struct WatchClient: Sendable {
    let baseURL: String
    let token: String
    let client: HTTPClient

    func submit(count: Int, taskMs: Int) async throws -> [Int64] {
        var request = HTTPClientRequest(url: baseURL + "/v1/tasks/batch")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Content-Type", value: "application/json")
        let element = "{\"type\":\"sleep\",\"params\":{\"ms\":\(taskMs)}}"
        request.body = .bytes(ByteBuffer(string: "{\"tasks\":[" + Array(repeating: element, count: count).joined(separator: ",") + "]}"))
        let response = try await client.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .created, let ids = (try? JSONValue.parse(String(buffer: body)))?["tasks"]?.arrayValue?.compactMap({ $0["id"]?.intValue }) else {
            throw LoadError("submitting got \(response.status.code): \(String(buffer: body))")
        }
        return ids
    }

    /// Follows the task's stream to its end; true when the last event is a terminal step.
    func followsToTheEnd(_ id: Int64) async -> Bool {
        var request = HTTPClientRequest(url: baseURL + "/v1/tasks/\(id)/stream")
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        do {
            let response = try await client.execute(request, timeout: .seconds(120))
            guard response.status == .ok else { return false }
            var parser = ServerSentEventParser()
            var last: ServerSentEvent?
            for try await buffer in response.body {
                if let event = parser.feed(buffer.readableBytesView).last { last = event }
            }
            return last.flatMap { TaskStatus(rawValue: $0.event) }?.isTerminal == true
        } catch {
            return false
        }
    }

    /// Long-polls until the task is terminal (re-asking after a wait that ran out); true when it was.
    func waitsForTheEnd(_ id: Int64) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(300)
        while ContinuousClock.now < deadline {
            var request = HTTPClientRequest(url: baseURL + "/v1/tasks/\(id)?wait=60s")
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            guard let response = try? await client.execute(request, timeout: .seconds(90)),
                let body = try? await response.body.collect(upTo: 1 << 20)
            else { return false }
            guard let status = (try? JSONValue.parse(String(buffer: body)))?["status"]?.stringValue.flatMap(TaskStatus.init(rawValue:)) else { return false }
            if status.isTerminal { return true }
        }
        return false
    }
}
