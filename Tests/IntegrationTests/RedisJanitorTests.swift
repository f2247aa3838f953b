import ConveyorCoordinator
import ConveyorCore
import ConveyorRedis
import ConveyorTesting
import Testing

/// The Redis janitor against a real Redis: every key it tidies stays bounded by live work.
@Suite("Redis janitor")
struct RedisJanitorTests {
    private func quietStack(agents: Int, _ configure: @escaping (inout CoordinatorConfiguration) -> Void = { _ in }) async throws -> Stack {
        let clock = MockClock()
        let stack = try await Stack.start(agents: agents, coordinatorClock: clock, configure: configure)
        await clock.waitForSleepers(6)
        return stack
    }

    private func send(_ stack: Stack, _ name: String, _ arguments: [String]) async throws -> RedisReply {
        try await stack.coordinator.redis.send(RedisCommand(name, arguments))
    }

    @Test("dead letters beyond the limit are trimmed oldest first with their index entries; their rows stay and a redrive of all finds them")
    func deadLettersAreTrimmed() async throws {
        let stack = try await quietStack(agents: 1) { $0.deadLetterLimit = 2 }
        let keys = stack.environment.keys
        var ids: [Int64] = []
        for _ in 0..<5 { ids.append(try await stack.submit("fail", params: "{\"times\":99}", extra: ",\"max_attempts\":1")) }
        #expect(try await stack.waitUntilTerminal(ids).values.allSatisfy { $0 == .dead })

        let sweep = try await stack.coordinator.janitor.sweepOnce()
        #expect(sweep.deadLettersTrimmed == 3)
        #expect(try await send(stack, "XLEN", [keys.dead("default")]).integer == 2)
        let indexed = try await send(stack, "HKEYS", [keys.deadIndex("default")]).array?.compactMap(\.string) ?? []
        // The letters left are the two that died last (the agent runs the five at once, so in any order).
        let left = try await send(stack, "XRANGE", [keys.dead("default"), "-", "+"]).array?.compactMap { entry -> String? in
            guard let fields = entry.array?.last?.array?.compactMap(\.string), let at = fields.firstIndex(of: "id") else { return nil }
            return fields[at + 1]
        } ?? []
        #expect(left.count == 2)
        #expect(Set(indexed) == Set(left), "the newest letters and only theirs stay indexed")
        #expect(try await stack.coordinator.janitor.sweepOnce().deadLettersTrimmed == 0, "within the limit, nothing more goes")

        let redriven = try await stack.post("/v1/dead/retry", "")
        #expect(redriven.json?["redriven"]?.intValue == 5, "\(redriven.body)")
        try await stack.stop()
    }

    @Test("a consumer idle past the limit and holding nothing is removed; one holding an entry stays")
    func idleConsumersAreRemoved() async throws {
        // Four seconds, not one: in CI's loaded parallel phase the first sweep once came more than a second
        // after the consumers were made.
        let stack = try await quietStack(agents: 0) { $0.idleConsumerAfter = .seconds(4) }
        let ready = stack.environment.keys.ready("default")
        _ = try await stack.submit("noop")
        _ = try await send(stack, "XGROUP", ["CREATECONSUMER", ready, RedisKeys.agentsGroup, "stopped-agent"])
        // "crashed-agent" read the task and never acknowledged it: its entry waits for a reclaim.
        _ = try await send(stack, "XREADGROUP", ["GROUP", RedisKeys.agentsGroup, "crashed-agent", "COUNT", "1", "STREAMS", ready, ">"])
        _ = try await stack.coordinator.janitor.sweepOnce()
        #expect(try await consumers(stack, ready) == ["crashed-agent", "stopped-agent"], "neither has been idle for four seconds yet")
        // Idle time is Redis' own clock: no test clock can stand in for it.
        try await Task.sleep(for: .milliseconds(4200))

        // At least the stopped agent; the Recorder's own consumer may go too if its blocking read has
        // lasted that long (it is back at its next read: removing a consumer that holds nothing is safe).
        #expect(try await stack.coordinator.janitor.sweepOnce().consumersRemoved >= 1)
        #expect(try await consumers(stack, ready) == ["crashed-agent"])
        try await stack.stop()
    }

    private func consumers(_ stack: Stack, _ stream: String) async throws -> [String] {
        let consumers = try await send(stack, "XINFO", ["CONSUMERS", stream, RedisKeys.agentsGroup]).array ?? []
        return consumers.compactMap { info -> String? in
            let fields = info.array ?? []
            guard let index = fields.firstIndex(where: { $0.string == "name" }), index + 1 < fields.count else { return nil }
            return fields[index + 1].string
        }.sorted()
    }

    @Test("cancel marks of tasks two censuses did not find in Redis are removed; the mark of a cancelled task still waiting stays")
    func staleCancelMarksAreRemoved() async throws {
        let stack = try await quietStack(agents: 0)
        let cancelled = stack.environment.keys.cancelled("default")
        let waiting = try await stack.submit("noop")
        #expect(try await stack.post("/v1/tasks/\(waiting)/cancel", "").status == 200)
        // A cancel that raced its task's completion: the mark of a task no longer in Redis.
        _ = try await send(stack, "SADD", [cancelled, "987654321"])

        #expect(try await stack.coordinator.janitor.sweepOnce().cancelMarksRemoved == 0, "one census is not enough")
        #expect(try await stack.coordinator.janitor.sweepOnce().cancelMarksRemoved == 1)
        let members = try await send(stack, "SMEMBERS", [cancelled]).array?.compactMap(\.string) ?? []
        #expect(members == [String(waiting)])
        try await stack.stop()
    }
}
