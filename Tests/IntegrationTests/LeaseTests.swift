import ConveyorAgent
import ConveyorCore
import ConveyorEmbedded
import Foundation
import ConveyorRedis
import ConveyorTesting
import Testing

@Suite("Leases and reclaiming")
struct LeaseTests {
    private let registry = TaskTypeRegistry([
        // Two seconds: renewals every 0.67 s then survive the stalls of a loaded 2-core test machine.
        TaskTypeDefinition(name: "work", maxConcurrent: 10, maxAttempts: 3, handler: "work", lease: .seconds(2)),
    ])

    @Test("a task held by an agent process killed with SIGKILL is taken over by another after its lease, and succeeds once")
    func killedAgentsTaskIsReclaimed() async throws {
        try #require(AgentProcess.isBuilt, "build the conveyor binary first: swift build")
        // The child runs the built-in sleep handler, for an hour: only a take-over can finish the task.
        let sleepy = TaskTypeRegistry([
            TaskTypeDefinition(name: "work", maxConcurrent: 10, maxAttempts: 3, handler: "sleep", lease: .seconds(2)),
        ])
        let stack = try await Stack.start(registry: sleepy, agents: 0)
        let agent = try await AgentProcess.start(
            on: stack, id: "doomed", registryYAML: "types:\n  work:\n    handler: sleep\n    max_concurrent: 10\n    lease: 2s\n")
        defer { agent.cleanUp() }
        let doomed = agent.process
        let journal = agent.journal
        let id = try await stack.submit("work", params: "{\"ms\":3600000}")
        // Until the child has started the attempt (its journal says so).
        var started = false
        for _ in 0..<300 where !started {
            started = ((try? String(contentsOfFile: journal, encoding: .utf8)) ?? "").split(separator: "\n").contains { $0.hasPrefix("\(id) ") }
            if !started { try await Task.sleep(for: .milliseconds(50)) }
        }
        try #require(started, "the agent process never started the task")
        doomed.signal(SIGKILL)
        #expect(await doomed.waitForExit() != 0)

        let log = ExecutionLog()
        var working = HandlerSet.builtIns
        working.register("sleep", log.handler())
        let rescuer = try stack.startAgent(id: "rescuer", registry: sleepy, handlers: working)
        #expect(try await stack.waitUntilTerminal([id], timeout: .seconds(30))[id] == .succeeded)
        #expect(log.executions[id] == 1)
        let task = try await stack.task(id)
        #expect(task["attempts"]?.intValue == 1, "a take-over runs the same attempt again")
        try await rescuer.stop()
        try await stack.stop()
    }

    @Test("a task running longer than its lease keeps it alive and is not taken over")
    func longTaskKeepsItsLease() async throws {
        let log = ExecutionLog()
        var handlers = HandlerSet.builtIns
        handlers.register("work", log.handler(sleep: .milliseconds(4500)))
        let stack = try await Stack.start(registry: registry, agents: 2, handlers: handlers)
        var ids: [Int64] = []
        for _ in 0..<4 { ids.append(try await stack.submit("work")) }
        let statuses = try await stack.waitUntilTerminal(ids, timeout: .seconds(40))
        #expect(statuses.values.allSatisfy { $0 == .succeeded })
        #expect(log.executions.values.allSatisfy { $0 == 1 }, "no task ran twice: \(log.executions)")
        try await stack.stop()
    }

    @Test("an entry delivered more often than its max_attempts without finishing is dead-lettered, never run again")
    func poisonIsDeadLettered() async throws {
        let poisonRegistry = TaskTypeRegistry([
            TaskTypeDefinition(name: "work", maxAttempts: 1, handler: "work", lease: .milliseconds(300)),
        ])
        let stack = try await Stack.start(registry: poisonRegistry, agents: 0)
        let id = try await stack.submit("work")
        let keys = stack.environment.keys
        let redis = RedisConnection(configuration: stack.environment.redis, logger: TestServers.quietLogger)
        defer { redis.close() }
        // Two consumers took it and vanished: delivered twice, never finished.
        let read = try await redis.readGroup(group: RedisKeys.agentsGroup, consumer: "ghost-1", streams: [keys.ready("default")], count: 1, block: nil)
        let entry = try #require(read.first?.entries.first?.id)
        _ = try await redis.send(RedisCommand("XCLAIM", [keys.ready("default"), RedisKeys.agentsGroup, "ghost-2", "0", entry]))

        let log = ExecutionLog()
        var handlers = HandlerSet.builtIns
        handlers.register("work", log.handler())
        let agent = try stack.startAgent(id: "checker", registry: poisonRegistry, handlers: handlers)
        #expect(try await stack.waitUntilTerminal([id], timeout: .seconds(20))[id] == .dead)
        #expect(log.executions.isEmpty, "a poison entry is not run")
        let dead = try await redis.send(RedisCommand("XRANGE", [keys.dead("default"), "-", "+"]))
        #expect(dead.array?.count == 1)
        #expect(try await stack.task(id)["error"]?.stringValue?.contains("delivered 2 times") == true)
        try await agent.stop()
        try await stack.stop()
    }

    @Test("an undecodable entry is dead-lettered with its reason, never crashes the agent and never comes back")
    func undecodableEntryIsDeadLettered() async throws {
        let log = ExecutionLog()
        var handlers = HandlerSet.builtIns
        handlers.register("work", log.handler())
        let stack = try await Stack.start(registry: registry, agents: 1, handlers: handlers)
        let keys = stack.environment.keys
        let redis = RedisConnection(configuration: stack.environment.redis, logger: TestServers.quietLogger)
        defer { redis.close() }
        _ = try await redis.send(RedisConnection.xadd(stream: keys.ready("default"), fields: [("id", "not-a-number"), ("junk", "yes")]))
        let after = try await stack.submit("work")
        #expect(try await stack.waitUntilTerminal([after])[after] == .succeeded, "the agent keeps working")

        var dead: [RedisReply] = []
        for _ in 0..<100 where dead.isEmpty {
            dead = try await redis.send(RedisCommand("XRANGE", [keys.dead("default"), "-", "+"])).array ?? []
            if dead.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(dead.count == 1)
        let fields = try #require(dead.first.flatMap { try? StreamEntry(reply: $0) }?.fields)
        #expect(fields["dead_reason"]?.contains("id") == true, "\(fields)")
        let pending = try await redis.send(RedisCommand("XPENDING", [keys.ready("default"), RedisKeys.agentsGroup]))
        #expect(pending.array?.first?.integer == 0, "nothing left to loop on")
        #expect(try await redis.send(RedisCommand("XLEN", [keys.ready("default")])).integer == 0)
        try await stack.stop()
    }
}
