@testable import ConveyorAgent
import ConveyorCore
import ConveyorRedis
import ConveyorTesting
import Testing

@Suite("The Completer's linger: outcomes that finish one by one share a script call", .timeLimit(.minutes(1)))
struct CompleterLingerTests {
    /// Ten entries pending under `agent-a`, and a Completer with the longest linger on a test clock.
    private struct Bench {
        let redis: RedisConnection
        let keys: RedisKeys
        let stream: String
        let deliveries: [Delivery]
        let completer: Completer
        let clock = MockClock()

        init(name: String, registry: TaskTypeRegistry, type: String) async throws {
            let environment = try await TestServers.shared.environment(name: name)
            let redis = RedisConnection(configuration: environment.redis, logger: TestServers.quietLogger)
            let keys = environment.keys
            let stream = keys.ready("default")
            try await redis.ensureGroup(stream: stream, group: RedisKeys.agentsGroup)
            _ = try await redis.send((1...10).map { RedisConnection.xadd(stream: stream, fields: [("id", String($0))]) })
            let entries = try #require(try await redis.readGroup(
                group: RedisKeys.agentsGroup, consumer: "agent-a", streams: [stream], count: 10, block: nil).first?.entries)
            self.deliveries = entries.enumerated().map { index, entry in
                Delivery(queue: "default", stream: stream, entryID: entry.id, envelope: TaskEnvelope(
                    id: TaskID(Int64(index + 1)), type: type, params: "{}", correlationID: "c", attempt: 1, maxAttempts: 3, enqueuedAtMillis: 0))
            }
            self.completer = Completer(
                redis: redis, keys: keys, registry: registry, agentID: "agent-a", batchSize: 100,
                linger: AgentConfiguration.longestCompleterLinger, clock: clock,
                gate: FlowGate(redis: redis, keys: keys, registry: registry), logger: TestServers.quietLogger)
            self.redis = redis
            self.keys = keys
            self.stream = stream
        }

        func finish(_ delivery: Delivery) async {
            await completer.finished(delivery, .succeeded(result: nil), startedAtMillis: WallClock.nowMillis())
        }

        /// Entries still pending (not acknowledged), once they are `count`.
        func waitForPending(_ count: Int64) async throws {
            for _ in 0..<1000 {
                if try await redis.send(RedisCommand("XPENDING", [stream, RedisKeys.agentsGroup])).array?.first?.integer == count { return }
                try await Task.sleep(for: .milliseconds(5))
            }
            Issue.record("never \(count) pending")
        }

        /// One events entry per script call (up to 32 events each).
        func scriptCalls() async throws -> Int64 {
            try #require(try await redis.send(RedisCommand("XLEN", [keys.events("default")])).integer)
        }
    }

    @Test("a lone outcome goes at once; outcomes that come during the linger that follows wait for it and share one call")
    func outcomesWithinTheLingerShareACall() async throws {
        let bench = try await Bench(name: "completer-linger", registry: .builtIn, type: "noop")
        defer { bench.redis.close() }
        let run = Task { try await bench.completer.run() }
        defer { run.cancel() }

        await bench.finish(bench.deliveries[0])
        try await bench.waitForPending(9)
        await bench.clock.waitForSleepers()
        #expect(bench.clock.pendingWaits == [AgentConfiguration.longestCompleterLinger])
        for delivery in bench.deliveries.dropFirst() { await bench.finish(delivery) }
        #expect(try await bench.scriptCalls() == 1, "the Completer lingers: nothing more was sent")

        bench.clock.advance(by: AgentConfiguration.longestCompleterLinger)
        try await bench.waitForPending(0)
        #expect(try await bench.scriptCalls() == 2, "the first outcome alone, the nine that came during the linger together")
    }

    @Test("an outcome of a type with a cluster-wide limit ends the linger: the slot it frees may be awaited")
    func limitedOutcomeEndsTheLinger() async throws {
        let registry = TaskTypeRegistry([TaskTypeDefinition(name: "llm", maxConcurrent: 1, handler: "noop")])
        let bench = try await Bench(name: "completer-linger-limited", registry: registry, type: "llm")
        defer { bench.redis.close() }
        let run = Task { try await bench.completer.run() }
        defer { run.cancel() }

        await bench.finish(bench.deliveries[0])
        try await bench.waitForPending(9)
        await bench.clock.waitForSleepers()
        await bench.finish(bench.deliveries[1])
        try await bench.waitForPending(8)
        #expect(bench.clock.now.offset == .zero, "acknowledged without the clock moving")
    }
}
