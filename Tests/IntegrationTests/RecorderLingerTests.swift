import ConveyorCore
import ConveyorPostgres
import ConveyorRedis
import ConveyorTesting
import Testing

@Suite("The Recorder's linger: fewer transactions at a light load, no wait behind a backlog")
struct RecorderLingerTests {
    @Test("events that arrive one by one within the linger share a transaction, and the first after a quiet spell is recorded at once")
    func lightLoadSharesTransactions() async throws {
        let stack = try await Stack.start(agents: 0) { $0.recorderLinger = .seconds(1) }
        let ids = try await submit(10, to: stack)
        let redis = RedisConnection(configuration: stack.environment.redis, logger: TestServers.quietLogger)
        defer { redis.close() }
        // Longer than the linger: whatever the submissions caused has been read, the Recorder is idle.
        try await Task.sleep(for: .milliseconds(1100))

        let first = ContinuousClock.now
        try await report(ids[0], on: redis, stack: stack)
        _ = try await stack.waitUntilTerminal([ids[0]], timeout: .seconds(20))
        let firstRecordedAfter = ContinuousClock.now - first
        #expect(firstRecordedAfter < .milliseconds(900), "the first event after a quiet spell waits for no linger")

        for id in ids.dropFirst() {
            try await report(id, on: redis, stack: stack)
            try await Task.sleep(for: .milliseconds(20))
        }
        let statuses = try await stack.waitUntilTerminal(ids, timeout: .seconds(20))
        #expect(statuses.values.allSatisfy { $0 == .succeeded })
        // Rows written by one transaction share its xmin.
        let transactions = try await stack.coordinator.postgres.withSession { session in
            try session.query(
                "SELECT count(DISTINCT xmin::text) FROM task_events WHERE task_id = ANY($1::bigint[]) AND status = 'succeeded'",
                [PostgresArrayLiteral.integers(ids)]
            ).rows.first?[0].flatMap { Int($0) }
        }
        #expect(transactions.map { (2...3).contains($0) } == true, "ten events over about 200 ms, within the linger of the first one's read: the first alone, the rest together (\(transactions ?? -1) transactions)")
        try await stack.stop()
    }

    @Test("a read that fills its batch is followed at once, whatever the linger")
    func backlogIsReadWithoutWaiting() async throws {
        // One entry per read (a batch of 32 events is one entry of an agent's batch), and the longest linger:
        // twenty single-event entries would take twenty seconds if a full read waited.
        let stack = try await Stack.start(agents: 0) { configuration in
            configuration.recorderBatchSize = 32
            configuration.recorderLinger = .seconds(1)
        }
        let ids = try await submit(20, to: stack)
        let redis = RedisConnection(configuration: stack.environment.redis, logger: TestServers.quietLogger)
        defer { redis.close() }
        let stream = stack.environment.keys.events(TaskTypeDefinition.defaultQueue)
        _ = try await redis.send(ids.map { RedisConnection.xadd(stream: stream, fields: succeeded($0).fields) })
        let statuses = try await stack.waitUntilTerminal(ids, timeout: .seconds(8))
        #expect(statuses.values.allSatisfy { $0 == .succeeded })
        try await stack.stop()
    }

    private func submit(_ count: Int, to stack: Stack) async throws -> [Int64] {
        var ids: [Int64] = []
        for _ in 0..<count { ids.append(try await stack.submit("noop")) }
        return ids
    }

    /// Reports the task succeeded, as an agent would: one event in the queue's events stream.
    private func report(_ id: Int64, on redis: RedisConnection, stack: Stack) async throws {
        let stream = stack.environment.keys.events(TaskTypeDefinition.defaultQueue)
        let reply = try await redis.send(RedisConnection.xadd(stream: stream, fields: succeeded(id).fields))
        #expect(reply.errorMessage == nil)
    }

    private func succeeded(_ id: Int64) -> LifecycleEvent {
        let now = WallClock.nowMillis()
        return LifecycleEvent(
            taskID: TaskID(rawValue: id), status: .succeeded, attempt: 1, agent: "agent-x", atMillis: now,
            startedAtMillis: now, correlationID: "linger-\(id)", type: "noop")
    }
}
