import ConveyorAgent
import ConveyorCore
import ConveyorRedis
import ConveyorTesting
import Testing

@Suite("Cancellation")
struct CancellationTests {
    private let registry = TaskTypeRegistry([TaskTypeDefinition(name: "work", maxConcurrent: 5, handler: "work")])

    @Test("a queued task that is cancelled never runs")
    func queuedTaskNeverRuns() async throws {
        let stack = try await Stack.start(registry: registry, agents: 0)
        let id = try await stack.submit("work")
        let reply = try await stack.postRetryingUnavailable("/v1/tasks/\(id)/cancel", "{}")
        #expect(reply.status == 200)
        #expect(reply.json?["status"]?.stringValue == "cancelled")
        #expect(try await stack.task(id)["status"]?.stringValue == "cancelled")

        let log = ExecutionLog()
        var handlers = HandlerSet.builtIns
        handlers.register("work", log.handler())
        let agent = try stack.startAgent(id: "late", registry: registry, handlers: handlers)
        let redis = RedisConnection(configuration: stack.environment.redis, logger: TestServers.quietLogger)
        defer { redis.close() }
        let keys = stack.environment.keys
        var left: Int64 = -1
        for _ in 0..<100 where left != 0 {
            left = try await redis.send(RedisCommand("XLEN", [keys.ready("default")])).integer ?? -1
            if left != 0 { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(left == 0, "the agent dropped the entry")
        #expect(log.executions.isEmpty, "a cancelled task never runs")
        #expect(try await stack.task(id)["status"]?.stringValue == "cancelled")
        try await agent.stop()
        try await stack.stop()
    }

    @Test("a running task that is cancelled is told to stop, and stays cancelled")
    func runningTaskIsStopped() async throws {
        let log = ExecutionLog()
        var handlers = HandlerSet.builtIns
        handlers.register("work", log.handler(sleep: .seconds(60)))
        let stack = try await Stack.start(registry: registry, agents: 1, handlers: handlers)
        let id = try await stack.submit("work")
        // The agent may still be starting on a loaded machine: wait for the run rather than a fixed 2 s.
        let started = ContinuousClock.now + .seconds(60)
        while log.executions.isEmpty, ContinuousClock.now < started { try await Task.sleep(for: .milliseconds(20)) }
        #expect(log.executions[id] == 1)
        let cancel = try await stack.postRetryingUnavailable("/v1/tasks/\(id)/cancel", "{}")
        #expect(cancel.status == 200, "\(cancel.status): \(cancel.body)")
        let clock = ContinuousClock()
        let start = clock.now
        while log.running > 0, clock.now - start < .seconds(10) { try await Task.sleep(for: .milliseconds(20)) }
        #expect(log.running == 0, "the handler was stopped, not left to run its 60 s")
        #expect(try await stack.task(id)["status"]?.stringValue == "cancelled")
        try await stack.stop()
    }

    @Test("cancelling a finished task is 409; an unknown one is 404")
    func cancelErrors() async throws {
        let stack = try await Stack.start()
        let id = try await stack.submit("noop")
        _ = try await stack.waitUntilTerminal([id])
        let finished = try await stack.post("/v1/tasks/\(id)/cancel", "{}")
        #expect(finished.status == 409)
        #expect(finished.json?["error"]?["code"]?.stringValue == "already_finished")
        #expect(try await stack.post("/v1/tasks/424242424/cancel", "{}").status == 404)
        try await stack.stop()
    }
}
