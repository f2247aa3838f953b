@testable import ConveyorAgent
import ConveyorCore
import ConveyorRedis
import ConveyorTesting
import Testing

@Suite("The Completer's linger: outcomes that finish one by one share a script call", .timeLimit(.minutes(1)))
struct CompleterLingerTests {
    @Test("outcomes that come within the linger after a lone one are acknowledged together, in one events entry")
    func outcomesWithinTheLingerShareACall() async throws {
        let environment = try await TestServers.shared.environment(name: "completer-linger")
        let redis = RedisConnection(configuration: environment.redis, logger: TestServers.quietLogger)
        defer { redis.close() }
        let keys = environment.keys
        let stream = keys.ready("default")
        try await redis.ensureGroup(stream: stream, group: RedisKeys.agentsGroup)
        _ = try await redis.send((1...10).map { RedisConnection.xadd(stream: stream, fields: [("id", String($0))]) })
        let entries = try #require(try await redis.readGroup(
            group: RedisKeys.agentsGroup, consumer: "agent-a", streams: [stream], count: 10, block: nil).first?.entries)
        let deliveries = entries.enumerated().map { index, entry in
            Delivery(queue: "default", stream: stream, entryID: entry.id, envelope: TaskEnvelope(
                id: TaskID(Int64(index + 1)), type: "noop", params: "{}", correlationID: "c", attempt: 1, maxAttempts: 3, enqueuedAtMillis: 0))
        }
        let registry = TaskTypeRegistry.builtIn
        let completer = Completer(
            redis: redis, keys: keys, registry: registry, agentID: "agent-a", batchSize: 100, linger: AgentConfiguration.longestCompleterLinger,
            gate: FlowGate(redis: redis, keys: keys, registry: registry), logger: TestServers.quietLogger)
        let run = Task { try await completer.run() }
        defer { run.cancel() }

        func pending() async throws -> Int64 {
            try await redis.send(RedisCommand("XPENDING", [stream, RedisKeys.agentsGroup])).array?.first?.integer ?? -1
        }
        func waitForPending(_ count: Int64) async throws {
            var polls = 0
            while try await pending() != count, polls < 500 {
                try await Task.sleep(for: .milliseconds(2))
                polls += 1
            }
            #expect(try await pending() == count)
        }
        // A lone outcome after a quiet spell goes at once; the linger starts with its batch.
        await completer.finished(deliveries[0], .succeeded(result: nil), startedAtMillis: WallClock.nowMillis())
        try await waitForPending(9)
        // Nine more, 2 ms apart: well inside the 100 ms that follow the first batch.
        for delivery in deliveries.dropFirst() {
            await completer.finished(delivery, .succeeded(result: nil), startedAtMillis: WallClock.nowMillis())
            try await Task.sleep(for: .milliseconds(2))
        }
        try await waitForPending(0)
        // One events entry per script call (up to 32 events each): the first alone, then the rest together;
        // a third only if this machine stalled for most of the linger.
        let calls = try #require(try await redis.send(RedisCommand("XLEN", [keys.events("default")])).integer)
        #expect((2...3).contains(calls), "ten outcomes, the last nine within the linger: \(calls) script calls")
    }
}
