import ConveyorCore
import ConveyorEmbedded
import ConveyorRedis
import ConveyorTesting
import Testing

@Suite("Redis layer against a real redis-server")
struct RedisLayerTests {
    private func connection() async throws -> (RedisConnection, RedisKeys) {
        let environment = try await TestServers.shared.environment(name: "redis")
        return (RedisConnection(configuration: environment.redis, logger: TestServers.quietLogger), environment.keys)
    }

    @Test("many concurrent callers are answered correctly, each with its own replies")
    func concurrentPipelining() async throws {
        let (redis, keys) = try await connection()
        defer { redis.close() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for caller in 0..<50 {
                group.addTask {
                    let key = "\(keys.prefix):counter:\(caller)"
                    let replies = try await redis.send((0..<20).map { _ in RedisCommand("INCR", [key]) })
                    #expect(replies.map(\.integer) == (1...20).map { Int64($0) })
                }
            }
            try await group.waitForAll()
        }
    }

    @Test("XADD, XREADGROUP with COUNT, XACK and XAUTOCLAIM, including the ids of entries deleted while pending")
    func streamOperations() async throws {
        let (redis, keys) = try await connection()
        defer { redis.close() }
        let stream = keys.ready("q")
        try await redis.ensureGroup(stream: stream, group: "g")
        try await redis.ensureGroup(stream: stream, group: "g")  // BUSYGROUP is tolerated
        _ = try await redis.send((0..<5).map { RedisConnection.xadd(stream: stream, fields: [("n", String($0))]) })
        let read = try await redis.readGroup(group: "g", consumer: "a", streams: [stream], count: 3, block: nil)
        #expect(read.count == 1)
        #expect(read[0].entries.map { $0.fields?["n"] } == ["0", "1", "2"])
        // Entry 0 is acknowledged, entry 1 is deleted while still pending.
        _ = try await redis.send([
            RedisConnection.xack(stream: stream, group: "g", ids: [read[0].entries[0].id]),
            RedisConnection.xdel(stream: stream, ids: [read[0].entries[1].id]),
        ])
        let claimed = try await redis.autoClaim(stream: stream, group: "g", consumer: "b", minIdle: .zero, count: 10)
        #expect(claimed.entries.map { $0.fields?["n"] } == ["2"])
        #expect(claimed.deletedIDs == [read[0].entries[1].id])
        #expect(claimed.nextCursor == "0-0")
    }

    @Test("a script is loaded on first use and again after SCRIPT FLUSH (EVALSHA falls back)")
    func scriptReload() async throws {
        let (redis, keys) = try await connection()
        defer { redis.close() }
        let script = RedisScript(name: "echo_key", source: "-- KEYS[1] -> any key\nreturn KEYS[1]")
        let key = "\(keys.prefix):k"
        #expect(try await redis.evaluate(script, [ScriptCall(keys: [key], arguments: [])]).first?.string == key)
        _ = try await redis.send(RedisCommand("SCRIPT", ["FLUSH"]))
        #expect(try await redis.evaluate(script, [ScriptCall(keys: [key], arguments: [])]).first?.string == key)
    }

    @Test("a connection reconnects after Redis restarts")
    func reconnects() async throws {
        // A private server, so restarting it disturbs no other test.
        let server = try await LocalRedisServer.start(logger: TestServers.quietLogger)
        let redis = RedisConnection(configuration: try RedisConfiguration(url: server.url), logger: TestServers.quietLogger)
        defer { redis.close() }
        #expect(try await redis.send(RedisCommand("PING")).string == "PONG")
        let port = server.port
        await server.stop()
        await #expect(throws: RedisError.self) { try await redis.send(RedisCommand("PING")) }
        let restarted = try await LocalRedisServer.start(port: port, logger: TestServers.quietLogger)

        var answer: String?
        for _ in 0..<60 where answer != "PONG" {
            answer = try? await redis.send(RedisCommand("PING")).string
            if answer != "PONG" { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(answer == "PONG")
        await restarted.stop()
    }
}

@Suite("The complete_tasks and forward_due scripts")
struct CompletionScriptTests {
    /// Three entries added to `ready` and read by consumer `a`; the second is acknowledged already (by
    /// this agent's earlier call, or by another agent after a takeover).
    private static func threePendingSecondFinished(in ready: String, on redis: RedisConnection) async throws -> [StreamEntry] {
        try await redis.ensureGroup(stream: ready, group: RedisKeys.agentsGroup)
        _ = try await redis.send((1...3).map { RedisConnection.xadd(stream: ready, fields: [("id", String($0))]) })
        let entries = try #require(try await redis.readGroup(group: RedisKeys.agentsGroup, consumer: "a", streams: [ready], count: 3, block: nil).first?.entries)
        _ = try await redis.send(RedisConnection.xack(stream: ready, group: RedisKeys.agentsGroup, ids: [entries[1].id]))
        return entries
    }

    private static func event(_ id: Int64, _ status: TaskStatus) -> LifecycleEvent {
        LifecycleEvent(taskID: TaskID(id), status: status, attempt: 1, agent: "a", atMillis: 1_000 + id, correlationID: "c", type: "t")
    }

    @Test("a completion repeated after a lost reply acknowledges once and adds its event and its retry once")
    func repeatedCompletionAddsNothingTwice() async throws {
        let environment = try await TestServers.shared.environment(name: "script")
        let redis = RedisConnection(configuration: environment.redis, logger: TestServers.quietLogger)
        defer { redis.close() }
        let keys = environment.keys
        let ready = keys.ready("q")
        try await redis.ensureGroup(stream: ready, group: RedisKeys.agentsGroup)
        _ = try await redis.send(RedisConnection.xadd(stream: ready, fields: [("id", "1")]))
        let entry = try #require(try await redis.readGroup(group: RedisKeys.agentsGroup, consumer: "a", streams: [ready], count: 1, block: nil).first?.entries.first)
        let call = ScriptCall(keys: [ready, keys.events("q"), keys.delayed("q"), keys.dead("q"), keys.deadIndex("q")], arguments: [
            RedisKeys.agentsGroup, "0",
            entry.id, "4", "task", "1", "status", "retrying", "3", "60000", "id", "1", "0",
            "", "2", "task", "9", "0", "0",
        ])
        let first = try await redis.evaluate(Scripts.completeTasks, [call])
        let second = try await redis.evaluate(Scripts.completeTasks, [call])
        #expect(first.first?.integer == 1)
        #expect(second.first?.integer == 0)
        let lengths = try await redis.send([
            RedisCommand("XLEN", [keys.events("q")]), RedisCommand("XLEN", [ready]), RedisCommand("ZCARD", [keys.delayed("q")]),
        ])
        // Events: the retry event once, plus the ack-less event of task 9 from each call.
        #expect(lengths[0].integer == 3)
        // The original entry is trimmed away; the next attempt waits in the delayed set, once.
        #expect(lengths[1].integer == 0)
        #expect(lengths[2].integer == 1)
    }

    @Test("framed events of one call become batch entries of at most 32, in order, holding only the entries this call acknowledged")
    func framedEventsBecomeOneEntry() async throws {
        let environment = try await TestServers.shared.environment(name: "batch-events")
        let redis = RedisConnection(configuration: environment.redis, logger: TestServers.quietLogger)
        defer { redis.close() }
        let keys = environment.keys
        let ready = keys.ready("q")
        let entries = try await Self.threePendingSecondFinished(in: ready, on: redis)
        let event = Self.event
        let items: [(ack: String, event: LifecycleEvent)] = [
            ("", event(1, .running)), (entries[0].id, event(1, .succeeded)), (entries[1].id, event(2, .succeeded)), (entries[2].id, event(3, .dead)),
        ]
        let call = ScriptCall(
            keys: [ready, keys.events("q"), keys.delayed("q"), keys.dead("q"), keys.deadIndex("q")],
            arguments: [RedisKeys.agentsGroup, "0"] + items.flatMap { [$0.ack, "1", $0.event.framedCompact, "0", "0"] })
        let acknowledged = try await redis.evaluate(Scripts.completeTasks, [call])
        #expect(acknowledged.first?.integer == 2)
        let stream = try await redis.send(RedisCommand("XRANGE", [keys.events("q"), "-", "+"]))
        let recorded = try (stream.array ?? []).map { reply throws(RedisError) in try StreamEntry(reply: reply) }
        #expect(recorded.count == 1, "one entry for the whole call")
        let fields = try #require(recorded.first?.fields)
        #expect(Array(fields.keys) == [LifecycleEvent.batchField])
        let events = try LifecycleEvent.events(inEntry: fields).map { try $0.get() }
        #expect(events == [event(1, .running), event(1, .succeeded), event(3, .dead)], "task 2's event is left out: this call did not acknowledge it")

        // A call with more events than one entry holds splits them, in order, never above the bound.
        let many = (1...(2 * Scripts.eventsPerBatchEntry + 5)).map { event(Int64(100 + $0), .running) }
        let large = ScriptCall(
            keys: [ready, keys.events("big"), keys.delayed("big"), keys.dead("big"), keys.deadIndex("big")],
            arguments: [RedisKeys.agentsGroup, "0"] + many.flatMap { ["", "1", $0.framedCompact, "0", "0"] })
        _ = try await redis.evaluate(Scripts.completeTasks, [large])
        let split = try await redis.send(RedisCommand("XRANGE", [keys.events("big"), "-", "+"]))
        let entriesOfMany = try (split.array ?? []).map { reply throws(RedisError) in try StreamEntry(reply: reply) }
        let perEntry = entriesOfMany.map { LifecycleEvent.events(inEntry: $0.fields ?? [:]).count }
        #expect(perEntry == [Scripts.eventsPerBatchEntry, Scripts.eventsPerBatchEntry, 5])
        #expect(try entriesOfMany.flatMap { try LifecycleEvent.events(inEntry: $0.fields ?? [:]).map { try $0.get() } } == many)
    }

    @Test("plain completions (entry id and event) come before the general items; an entry another call acknowledged adds nothing; past 32 events they share entries with the general items, in order")
    func plainCompletions() async throws {
        let environment = try await TestServers.shared.environment(name: "plain-completions")
        let redis = RedisConnection(configuration: environment.redis, logger: TestServers.quietLogger)
        defer { redis.close() }
        let keys = environment.keys
        let ready = keys.ready("q")
        let entries = try await Self.threePendingSecondFinished(in: ready, on: redis)
        let event = Self.event
        let call = ScriptCall(
            keys: [ready, keys.events("q"), keys.delayed("q"), keys.dead("q"), keys.deadIndex("q")],
            arguments: [RedisKeys.agentsGroup, "2", entries[0].id, event(1, .succeeded).framedCompact, entries[1].id, event(2, .succeeded).framedCompact]
                + [entries[2].id, "1", event(3, .failed).framedCompact, "0", "0"])
        let acknowledged = try await redis.evaluate(Scripts.completeTasks, [call])
        #expect(acknowledged.first?.integer == 2)
        let again = try await redis.evaluate(Scripts.completeTasks, [call])
        #expect(again.first?.integer == 0, "a repeated call acknowledges nothing")
        let stream = try await redis.send(RedisCommand("XRANGE", [keys.events("q"), "-", "+"]))
        let recorded = try (stream.array ?? []).map { reply throws(RedisError) in try StreamEntry(reply: reply) }
        let events = try recorded.flatMap { try LifecycleEvent.events(inEntry: $0.fields ?? [:]).map { try $0.get() } }
        #expect(events == [event(1, .succeeded), event(3, .failed)], "task 2 was acknowledged before: its event is left out, and nothing is added twice")
        let length = try await redis.send(RedisCommand("XLEN", [ready]))
        #expect(length.integer == 0, "all three are trimmed away")

        // 40 plain completions and 5 general items in one call: entries of 32 and 13 events, in argument order.
        let many = keys.ready("many")
        try await redis.ensureGroup(stream: many, group: RedisKeys.agentsGroup)
        _ = try await redis.send((1...40).map { RedisConnection.xadd(stream: many, fields: [("id", String($0))]) })
        let pending = try #require(try await redis.readGroup(group: RedisKeys.agentsGroup, consumer: "a", streams: [many], count: 40, block: nil).first?.entries)
        let plain = pending.enumerated().map { (entry: $1.id, event: event(Int64(100 + $0), .succeeded)) }
        let general = (0..<5).map { event(Int64(200 + $0), .running) }
        let large = ScriptCall(
            keys: [many, keys.events("many"), keys.delayed("many"), keys.dead("many"), keys.deadIndex("many")],
            arguments: [RedisKeys.agentsGroup, "40"] + plain.flatMap { [$0.entry, $0.event.framedCompact] }
                + general.flatMap { ["", "1", $0.framedCompact, "0", "0"] })
        #expect(try await redis.evaluate(Scripts.completeTasks, [large]).first?.integer == 40)
        let split = try await redis.send(RedisCommand("XRANGE", [keys.events("many"), "-", "+"]))
        let entriesOfMany = try (split.array ?? []).map { reply throws(RedisError) in try StreamEntry(reply: reply) }
        #expect(entriesOfMany.map { LifecycleEvent.events(inEntry: $0.fields ?? [:]).count } == [32, 13])
        let recordedMany = try entriesOfMany.flatMap { try LifecycleEvent.events(inEntry: $0.fields ?? [:]).map { try $0.get() } }
        #expect(recordedMany == plain.map(\.event) + general)
    }

    @Test("finished entries are trimmed, not deleted one by one; behind an entry added seconds before them they are deleted, behind a recent one (or a backlog's oldest) they wait for the trim; the backlog is the group's lag")
    func finishedEntriesAreTrimmed() async throws {
        let environment = try await TestServers.shared.environment(name: "trim")
        let redis = RedisConnection(configuration: environment.redis, logger: TestServers.quietLogger)
        defer { redis.close() }
        let keys = environment.keys
        let ready = keys.ready("q")
        try await redis.ensureGroup(stream: ready, group: RedisKeys.agentsGroup)
        func complete(_ entry: StreamEntry, in queue: String) async throws {
            let call = ScriptCall(keys: [keys.ready(queue), keys.events(queue), keys.delayed(queue), keys.dead(queue), keys.deadIndex(queue)], arguments: [
                RedisKeys.agentsGroup, "0", entry.id, "2", "task", entry.fields?["id"] ?? "", "0", "0",
            ])
            _ = try await redis.evaluate(Scripts.completeTasks, [call])
        }
        func state(of ready: String) async throws -> (length: Int64?, backlog: Int64) {
            let replies = try await redis.send([
                RedisCommand("XLEN", [ready]), RedisCommand("XPENDING", [ready, RedisKeys.agentsGroup]), RedisConnection.xinfoGroups(stream: ready),
            ])
            let pending = replies[1].array?.first?.integer ?? 0
            return (replies[0].integer, RedisConnection.backlog(length: replies[0], pending: pending, groups: replies[2], group: RedisKeys.agentsGroup))
        }

        // Entries added just now: 2 and 3 finish while 1 is in flight. The trim cannot pass 1, and 1 is
        // young, so they stay until it finishes; the backlog (the group's lag) is not fooled by them.
        let young = keys.ready("young")
        try await redis.ensureGroup(stream: young, group: RedisKeys.agentsGroup)
        _ = try await redis.send((1...4).map { RedisConnection.xadd(stream: young, fields: [("id", String($0))]) })
        let fresh = try #require(try await redis.readGroup(group: RedisKeys.agentsGroup, consumer: "a", streams: [young], count: 3, block: nil).first?.entries)
        try await complete(fresh[1], in: "young")
        try await complete(fresh[2], in: "young")
        #expect(try await state(of: young) == (4, 1))
        try await complete(fresh[0], in: "young")
        #expect(try await state(of: young) == (1, 1), "all three go with one trim once the oldest finishes")

        // A backlog: entries added long ago, a few milliseconds apart. 2 and 3 finish while 1 is in
        // flight; they are old, but not far newer than 1, so they wait for the trim like young ones.
        let backlog = keys.ready("backlog")
        try await redis.ensureGroup(stream: backlog, group: RedisKeys.agentsGroup)
        _ = try await redis.send((1...4).map { RedisCommand("XADD", [backlog, "1000-\($0)", "id", String($0)]) })
        let behind = try #require(try await redis.readGroup(group: RedisKeys.agentsGroup, consumer: "a", streams: [backlog], count: 3, block: nil).first?.entries)
        try await complete(behind[1], in: "backlog")
        try await complete(behind[2], in: "backlog")
        #expect(try await state(of: backlog) == (4, 1), "not deleted one by one behind a backlog's oldest entry")
        try await complete(behind[0], in: "backlog")
        #expect(try await state(of: backlog) == (1, 1))

        // Entries added more than five seconds after the one in flight finish: it is stuck behind them
        // (a long task, a dead agent's entry), so entries finishing behind it are deleted as they finish.
        _ = try await redis.send([1, 7, 8, 9].enumerated().map { RedisCommand("XADD", [ready, "\($1)000-1", "id", String($0 + 1)]) })
        let entries = try #require(try await redis.readGroup(group: RedisKeys.agentsGroup, consumer: "a", streams: [ready], count: 3, block: nil).first?.entries)
        func complete(_ entry: StreamEntry) async throws { try await complete(entry, in: "q") }
        func state() async throws -> (length: Int64?, backlog: Int64) { try await state(of: ready) }
        try await complete(entries[1])
        try await complete(entries[2])
        #expect(try await state() == (2, 1))
        // The entry in flight can still be taken over with its fields.
        let claimed = try await redis.autoClaim(stream: ready, group: RedisKeys.agentsGroup, consumer: "b", minIdle: .zero, count: 10)
        #expect(claimed.entries.map { $0.fields?["id"] } == ["1"])
        // Entry 1 finishes and is trimmed; the undelivered entry 4 stays.
        try await complete(entries[0])
        #expect(try await state() == (1, 1))
        let left = try await redis.send(RedisCommand("XRANGE", [ready, "-", "+"]))
        #expect(left.array?.first?.array?[1].array?.compactMap(\.string) == ["id", "4"])

        // Recorded events are acknowledged and trimmed the same way.
        let events = keys.events("q")
        try await redis.ensureGroup(stream: events, group: RedisKeys.recordersGroup)
        let read = try #require(try await redis.readGroup(group: RedisKeys.recordersGroup, consumer: "r", streams: [events], count: 10, block: nil).first?.entries)
        #expect(read.count == 3)
        let acked = try await redis.evaluate(Scripts.acknowledgeEvents, [ScriptCall(keys: [events], arguments: [RedisKeys.recordersGroup] + read.map(\.id))])
        #expect(acked.first?.integer == 3)
        #expect(try await redis.send(RedisCommand("XLEN", [events])).integer == 0)
        let again = try await redis.evaluate(Scripts.acknowledgeEvents, [ScriptCall(keys: [events], arguments: [RedisKeys.recordersGroup] + read.map(\.id))])
        #expect(again.first?.integer == 0, "a repeated call (after a lost reply) acknowledges nothing twice")
    }

    @Test("forward_due moves only entries that are due, with their fields, and says how long until the next one")
    func forwardsOnlyDueEntries() async throws {
        let environment = try await TestServers.shared.environment(name: "script")
        let redis = RedisConnection(configuration: environment.redis, logger: TestServers.quietLogger)
        defer { redis.close() }
        let keys = environment.keys
        let farFuture = String(WallClock.nowMillis() + 3_600_000)
        _ = try await redis.send([
            RedisCommand("ZADD", [keys.delayed("q"), "1", #"["id","1","attempt","2"]"#]),
            RedisCommand("ZADD", [keys.delayed("q"), farFuture, #"["id","2","attempt","2"]"#]),
        ])
        let reply = try await redis.evaluate(Scripts.forwardDue, [ScriptCall(keys: [keys.delayed("q"), keys.ready("q")], arguments: ["100"])])
        let parts = try #require(reply.first?.array)
        #expect(parts[0].integer == 1)
        #expect((parts[1].integer ?? 0) > 3_500_000)
        let moved = try await redis.send(RedisCommand("XRANGE", [keys.ready("q"), "-", "+"]))
        let fields = moved.array?.first?.array?[1].array?.compactMap(\.string)
        #expect(fields == ["id", "1", "attempt", "2"])
        #expect(try await redis.send(RedisCommand("ZCARD", [keys.delayed("q")])).integer == 1)
    }
}

@Suite("Redis durability check")
struct RedisDurabilityCheckTests {
    @Test("a Redis without AOF is reported at start; one with AOF and noeviction is not")
    func warnsAboutMissingAOF() async throws {
        let shared = try await TestServers.shared.environment(name: "durability")
        let plain = RedisConnection(configuration: shared.redis, logger: TestServers.quietLogger)
        defer { plain.close() }
        let warnings = await plain.durabilityWarnings()
        #expect(warnings.count == 1 && warnings[0].contains("AOF"), "\(warnings)")

        let durable = try await TestServers.shared.environment(name: "durability", ownRedis: true)
        let aof = RedisConnection(configuration: durable.redis, logger: TestServers.quietLogger)
        defer { aof.close() }
        #expect(await aof.durabilityWarnings().isEmpty)
        await durable.redisServer.stop()
    }
}
