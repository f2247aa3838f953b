import ConveyorCore
import ConveyorRedis
import ConveyorTesting
import Testing

@Suite("Events left by a coordinator that is gone")
struct AbandonedEventsTests {
    @Test("events pending with a Recorder that never comes back are taken over and recorded by another")
    func abandonedEventsAreRecorded() async throws {
        let stack = try await Stack.start(agents: 0) { configuration in
            configuration.abandonedEventsAfter = .milliseconds(300)
        }
        let id = try await stack.submit("noop")
        let now = WallClock.nowMillis()
        let event = LifecycleEvent(
            taskID: TaskID(rawValue: id), status: .succeeded, attempt: 1, agent: "agent-x", atMillis: now,
            startedAtMillis: now, correlationID: "abandoned", type: "noop")
        let stream = stack.environment.keys.events(TaskTypeDefinition.defaultQueue)
        // A connection of its own, so nothing else lands inside the transaction: the dead coordinator
        // reads the event in the same transaction that adds it, before the live Recorder can.
        let redis = RedisConnection(configuration: stack.environment.redis, logger: TestServers.quietLogger)
        defer { redis.close() }
        let replies = try await redis.send([
            RedisCommand("MULTI"),
            RedisConnection.xadd(stream: stream, fields: event.fields),
            RedisCommand("XREADGROUP", ["GROUP", RedisKeys.recordersGroup, "coordinator-gone", "COUNT", "10", "STREAMS", stream, ">"]),
            RedisCommand("EXEC"),
        ])
        #expect(replies.allSatisfy { $0.errorMessage == nil }, "\(replies)")
        let statuses = try await stack.waitUntilTerminal([id], timeout: .seconds(20))
        #expect(statuses[id] == .succeeded)
        // Acknowledged right after the COMMIT the status came from.
        var pending: Int64? = nil
        for _ in 0..<100 where pending != 0 {
            pending = try await redis.send(RedisCommand("XPENDING", [stream, RedisKeys.recordersGroup])).array?.first?.integer
            if pending != 0 { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(pending == 0, "nothing left pending")
        try await stack.stop()
    }
}
