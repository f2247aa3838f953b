@testable import ConveyorAgent
import ConveyorCore
import ConveyorRedis
import ConveyorTesting
import Synchronization
import Testing

@Suite("Executor at shutdown", .timeLimit(.minutes(1)))
struct ExecutorShutdownTests {
    @Test("entries read ahead that never started are handed back at shutdown and never run; the running one finishes")
    func unstartedEntriesAreHandedBack() async throws {
        let environment = try await TestServers.shared.environment(name: "handback")
        let redis = RedisConnection(configuration: environment.redis, logger: TestServers.quietLogger)
        defer { redis.close() }
        let keys = environment.keys
        let stream = keys.ready("default")
        try await redis.ensureGroup(stream: stream, group: RedisKeys.agentsGroup)
        _ = try await redis.send((1...3).map { RedisConnection.xadd(stream: stream, fields: [("id", String($0))]) })
        // Pending under this agent, as after a read of its one free slot and two entries read ahead.
        let entries = try #require(try await redis.readGroup(
            group: RedisKeys.agentsGroup, consumer: "agent-a", streams: [stream], count: 3, block: nil).first?.entries)
        #expect(entries.count == 3)
        let deliveries = entries.enumerated().map { index, entry in
            Delivery(queue: "default", stream: stream, entryID: entry.id, envelope: TaskEnvelope(
                id: TaskID(Int64(index + 1)), type: "hold", params: "{}", correlationID: "c", attempt: 1, maxAttempts: 3, enqueuedAtMillis: 0))
        }

        let registry = TaskTypeRegistry([TaskTypeDefinition(name: "hold", handler: "test")])
        let started = Mutex<[TaskID]>([])
        let firstStarted = Promise<Void>()
        let release = Promise<Void>()
        let handler = ClosureHandler { task in
            started.withLock { $0.append(task.id) }
            firstStarted.succeed(())
            try await release.value
            return nil
        }
        let slots = SlotPool(capacity: 1)
        slots.take(deliveries.count)
        let gate = FlowGate(redis: redis, keys: keys, registry: registry)
        let completer = Completer(
            redis: redis, keys: keys, registry: registry, agentID: "agent-a", batchSize: 10, gate: gate, logger: TestServers.quietLogger)
        let executor = Executor(
            handlers: ["hold": handler], registry: registry, completer: completer, slots: slots, agentID: "agent-a",
            journal: nil, redis: redis, gate: gate, logger: TestServers.quietLogger)
        executor.submit(deliveries)
        let run = Task { try await executor.run() }

        try await firstStarted.value
        executor.stopAccepting()
        release.succeed(())
        try await run.value

        #expect(started.withLock { $0 } == [TaskID(1)], "only the entry that held the slot ran")
        #expect(slots.free == 1, "every slot and every entry in hand is given up")
        // XPENDING's extended form: [id, consumer, idle ms, deliveries] per entry.
        let pending = try await redis.send(RedisCommand("XPENDING", [stream, RedisKeys.agentsGroup, "-", "+", "10"]))
        let idle = Dictionary(uniqueKeysWithValues: (pending.array ?? []).compactMap { row -> (String, Int64)? in
            guard let fields = row.array, fields.count == 4, let id = fields[0].string, let ms = fields[2].integer else { return nil }
            return (id, ms)
        })
        let handedBack = Executor.handBackIdle.milliseconds
        #expect(idle.count == 3, "nothing acknowledged: the Completer did not run")
        #expect(try #require(idle[entries[0].id]) < handedBack / 2, "the entry that ran is not handed back")
        #expect(try #require(idle[entries[1].id]) >= handedBack, "handed back: another agent's Reclaimer takes it at once")
        #expect(try #require(idle[entries[2].id]) >= handedBack)
    }
}
