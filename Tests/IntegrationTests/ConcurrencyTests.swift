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
        // One batch, so all twelve are waiting at once however slowly this machine answers single POSTs.
        let body = "{\"tasks\":[" + (Array(repeating: #"{"type":"slow","params":{"ms":150}}"#, count: 12)
            + Array(repeating: #"{"type":"noop"}"#, count: 10)).joined(separator: ",") + "]}"
        let ids = try #require(try await stack.post("/v1/tasks/batch", body).json?["tasks"]?.arrayValue?.compactMap { $0["id"]?.intValue })
        let statuses = try await stack.waitUntilTerminal(ids)
        #expect(statuses.values.allSatisfy { $0 == .succeeded })
        #expect(log.maxRunning == 3)
        try await stack.stop()
    }
}
