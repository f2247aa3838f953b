import ConveyorAgent
import ConveyorCore
import Testing

@Suite("Per-type concurrency")
struct ConcurrencyTests {
    @Test("under the sleep handler, an agent runs at most max_concurrent tasks of a type at once, and reaches that limit")
    func perTypeLimitHoldsUnderSleep() async throws {
        let log = ExecutionLog()
        let sleep = SleepHandler()
        var handlers = HandlerSet.builtIns
        handlers.register("tracked_sleep") { task in
            log.begin(task.id)
            defer { log.end() }
            return try await sleep.handle(task)
        }
        let registry = TaskTypeRegistry([
            TaskTypeDefinition(name: "slow", maxConcurrent: 3, handler: "tracked_sleep"),
            TaskTypeDefinition(name: "noop", maxConcurrent: 10, handler: "noop"),
        ])
        // The agent has room for 20; only the type's limit holds the sleeps back.
        let stack = try await Stack.start(registry: registry, agents: 1, concurrency: 20, handlers: handlers)
        var ids: [Int64] = []
        for _ in 0..<12 { ids.append(try await stack.submit("slow", params: "{\"ms\":150}")) }
        for _ in 0..<10 { ids.append(try await stack.submit("noop")) }
        let statuses = try await stack.waitUntilTerminal(ids)
        #expect(statuses.values.allSatisfy { $0 == .succeeded })
        #expect(log.maxRunning == 3)
        try await stack.stop()
    }
}
