import ConveyorAgent
import ConveyorCore
import ConveyorPostgres
import ConveyorRedis
import ConveyorTesting
import Synchronization
import Testing

@Suite("Graceful shutdown and replays")
struct ShutdownAndReplayTests {
    @Test("graceful shutdown lets running tasks finish and flushes their outcomes before the agent stops")
    func drainsOnShutdown() async throws {
        let log = ExecutionLog()
        var handlers = HandlerSet.builtIns
        handlers.register("slow", log.handler(sleep: .milliseconds(800)))
        let registry = TaskTypeRegistry([TaskTypeDefinition(name: "slow", maxConcurrent: 10, handler: "slow")])
        let stack = try await Stack.start(registry: registry, agents: 1, handlers: handlers)
        for _ in 0..<5 { _ = try await stack.submit("slow") }
        let started = ContinuousClock.now + .seconds(60)
        while log.executions.count < 5, ContinuousClock.now < started { try await Task.sleep(for: .milliseconds(20)) }
        #expect(log.executions.count == 5, "all five are running")
        try await stack.stop()

        let redis = RedisConnection(configuration: stack.environment.redis, logger: TestServers.quietLogger)
        defer { redis.close() }
        let keys = stack.environment.keys
        let replies = try await redis.send([
            RedisCommand("XPENDING", [keys.ready("default"), RedisKeys.agentsGroup]),
            RedisCommand("XRANGE", [keys.events("default"), "-", "+"]),
        ])
        #expect(replies[0].array?.first?.integer == 0, "nothing left unacknowledged")
        let events = replies[1].array ?? []
        let outcomes = events.flatMap { entry -> [String] in
            guard let fields = entry.array?[1].array else { return [] }
            let pairs = stride(from: 0, to: fields.count - 1, by: 2).map { (fields[$0].string ?? "", fields[$0 + 1].string ?? "") }
            return LifecycleEvent.events(inEntry: Dictionary(pairs) { _, last in last }).compactMap { try? $0.get().status.rawValue }
        }
        // Events the Recorder had not yet taken, plus those it recorded before stopping, cover all five.
        let postgres = PostgresClient(configuration: stack.environment.postgres, logger: TestServers.quietLogger)
        defer { postgres.close() }
        let recorded = try await TaskStore(client: postgres).countByStatus()[.succeeded] ?? 0
        #expect(outcomes.filter { $0 == "succeeded" }.count + recorded >= 5)
    }

    @Test("tasks still running at the shutdown deadline are handed back and run elsewhere at once, not after their lease")
    func interruptedTasksAreHandedBack() async throws {
        // A long lease: without the hand-back, the rescuer would wait 60 s for it.
        let registry = TaskTypeRegistry([
            TaskTypeDefinition(name: "work", maxConcurrent: 10, maxAttempts: 3, handler: "work", lease: .seconds(60)),
        ])
        let stack = try await Stack.start(registry: registry, agents: 0)
        let hung = ExecutionLog()
        var hanging = HandlerSet.builtIns
        hanging.register("work") { task in
            hung.begin(task.id)
            defer { hung.end() }
            try await Task.sleep(for: .seconds(3600))
            return nil
        }
        let leaving = try stack.startAgent(id: "leaving", registry: registry, handlers: hanging, shutdownDeadline: .milliseconds(300))
        let id = try await stack.submit("work")
        for _ in 0..<200 where hung.executions.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
        #expect(hung.executions[id] == 1)
        try await leaving.stop()

        let log = ExecutionLog()
        var working = HandlerSet.builtIns
        working.register("work", log.handler())
        let rescuer = try stack.startAgent(id: "rescuer", registry: registry, handlers: working)
        #expect(try await stack.waitUntilTerminal([id], timeout: .seconds(15))[id] == .succeeded)
        #expect(log.executions[id] == 1)
        try await rescuer.stop()
        try await stack.stop()
    }

    @Test("a coordinator shut down under load answers what it accepted: every 201 is committed and on its stream")
    func coordinatorDrainsAcceptedSubmissions() async throws {
        let stack = try await Stack.start(agents: 0)
        let accepted = AcceptedIDs()
        let load = Task {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<16 {
                    group.addTask {
                        // An in-process server's keep-alive connections outlive it: a request sent after the
                        // stop would wait out its timeout, so the submitters stop sending first.
                        for _ in 0..<50 where !accepted.stopped {
                            guard let reply = try? await stack.post("/v1/tasks", #"{"type":"noop"}"#, timeout: .seconds(5)) else { return }
                            if reply.status == 201, let id = reply.json?["id"]?.intValue { accepted.append(id) }
                        }
                    }
                }
            }
        }
        // Up to 10 s: in the loaded parallel phase of a 2-core CI machine 50 POSTs can take more than 2 s.
        for _ in 0..<1000 where accepted.all.count < 50 { try await Task.sleep(for: .milliseconds(10)) }
        accepted.stop()
        try await stack.stop()
        await load.value

        let ids = accepted.all
        #expect(ids.count >= 50)
        let postgres = PostgresClient(configuration: stack.environment.postgres, logger: TestServers.quietLogger)
        defer { postgres.close() }
        let stored = try await postgres.withSession { session in
            try session.query("SELECT count(*) FROM tasks WHERE id = ANY($1::bigint[])", [PostgresArrayLiteral.integers(ids)]).rows.first?[0]
        }
        #expect(stored == String(ids.count), "every 201 is committed")
        let redis = RedisConnection(configuration: stack.environment.redis, logger: TestServers.quietLogger)
        defer { redis.close() }
        let entries = try await redis.send(RedisCommand("XRANGE", [stack.environment.keys.ready("default"), "-", "+"])).array ?? []
        let onStream = Set(entries.compactMap { try? StreamEntry(reply: $0).fields?["id"] }.compactMap { Int64($0) })
        #expect(Set(ids).isSubset(of: onStream), "every 201 is on its stream")
    }

    @Test("recording the same events twice changes nothing the second time; a batch mixing old and new events records only the new")
    func replayIsIgnored() async throws {
        let client = try await Self.replayDatabase()
        defer { client.close() }
        let store = TaskStore(client: client)
        let inserted = try await store.insert([
            NewTask(type: "noop", queue: "default", params: "{}", correlationID: "c", idempotencyKey: nil, maxAttempts: 3, createdAtMillis: WallClock.nowMillis()),
        ])
        let id = inserted[0].id
        let now = WallClock.nowMillis()
        let events = [
            LifecycleEvent(taskID: id, status: .running, attempt: 1, agent: "a", atMillis: now, startedAtMillis: now, correlationID: "c", type: "noop"),
            LifecycleEvent(taskID: id, status: .succeeded, attempt: 1, agent: "a", atMillis: now + 5, startedAtMillis: now, result: "{\"ok\":1}", correlationID: "c", type: "noop"),
        ]
        let recorder = EventStore(client: client)
        let first = try await recorder.record(events)
        #expect(first.eventsAppended == 2 && first.tasksUpdated == 1)
        let again = try await recorder.record(events)
        #expect(again.eventsAppended == 0 && again.tasksUpdated == 0)
        // A late running event after success moves nothing either.
        let late = try await recorder.record([
            LifecycleEvent(taskID: id, status: .running, attempt: 1, agent: "b", atMillis: now + 10, correlationID: "c", type: "noop"),
        ])
        #expect(late.tasksUpdated == 0)
        // A batch mixing a replayed event with a new one records the new one only, and merges it.
        let other = try await store.insert([
            NewTask(type: "noop", queue: "default", params: "{}", correlationID: "d", idempotencyKey: nil, maxAttempts: 3, createdAtMillis: WallClock.nowMillis()),
        ])[0].id
        let mixed = try await recorder.record([
            events[0],
            LifecycleEvent(taskID: other, status: .running, attempt: 1, agent: "a", atMillis: now + 20, startedAtMillis: now + 20, correlationID: "d", type: "noop"),
        ])
        #expect(mixed.eventsAppended == 1 && mixed.tasksUpdated == 1)
        #expect(try await store.get(other)?.status == .running)
        let task = try #require(try await store.get(id))
        #expect(task.status == .succeeded)
        #expect(task.result == "{\"ok\": 1}")
        #expect(task.startedAt != nil && task.finishedAt != nil)
    }

    @Test("a replayed batch too large for the INSERT (its COPY hits the key) records only its new events, and merges only those")
    func largeReplayIsIgnored() async throws {
        let client = try await Self.replayDatabase()
        defer { client.close() }
        let store = TaskStore(client: client)
        let inserted = try await store.insert((0..<40).map { index in
            NewTask(type: "noop", queue: "default", params: "{}", correlationID: "large-\(index)", idempotencyKey: nil, maxAttempts: 3, createdAtMillis: WallClock.nowMillis())
        })
        let now = WallClock.nowMillis()
        // Two events per task: 80 in a batch, above the 64 the INSERT takes, so the batch is a COPY.
        let events = inserted.flatMap { task in
            [
                LifecycleEvent(taskID: task.id, status: .running, attempt: 1, agent: "a", atMillis: now, startedAtMillis: now, correlationID: "r", type: "noop"),
                LifecycleEvent(taskID: task.id, status: .succeeded, attempt: 1, agent: "a", atMillis: now + 5, startedAtMillis: now, correlationID: "r", type: "noop"),
            ]
        }
        let recorder = EventStore(client: client)
        let first = try await recorder.record(Array(events.prefix(60)))
        #expect(first.eventsAppended == 60 && first.tasksUpdated == 30)
        let again = try await recorder.record(events)
        #expect(again.eventsAppended == 20 && again.tasksUpdated == 10, "only the ten tasks the first batch had not seen")
        for task in inserted {
            #expect(try await store.get(task.id)?.status == .succeeded)
        }
    }

    @Test("an event PostgreSQL refuses is dropped alone: the Recorder records the rest and keeps going")
    func poisonEventDoesNotStallRecording() async throws {
        let stack = try await Stack.start(agents: 0)
        let id = try await stack.submit("noop")
        let redis = RedisConnection(configuration: stack.environment.redis, logger: TestServers.quietLogger)
        defer { redis.close() }
        let now = String(WallClock.nowMillis())
        let events = stack.environment.keys.events("default")
        // A result that is not JSON cannot go into jsonb; the good event beside it must still land.
        _ = try await redis.send([
            RedisConnection.xadd(stream: events, fields: [
                ("task", String(id)), ("status", "succeeded"), ("attempt", "1"), ("agent", "x"), ("at", now),
                ("cid", "c"), ("type", "noop"), ("result", "{not json"),
            ]),
            RedisConnection.xadd(stream: events, fields: [
                ("task", String(id)), ("status", "running"), ("attempt", "1"), ("agent", "x"), ("at", now), ("cid", "c"), ("type", "noop"),
            ]),
        ])
        var status: String?
        for _ in 0..<100 where status != "running" {
            status = try await stack.task(id)["status"]?.stringValue
            if status != "running" { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(status == "running")
        // And recording goes on for later events.
        _ = try await redis.send(RedisConnection.xadd(stream: events, fields: [
            ("task", String(id)), ("status", "succeeded"), ("attempt", "1"), ("agent", "x"), ("at", now), ("cid", "c"), ("type", "noop"),
        ]))
        #expect(try await stack.waitUntilTerminal([id])[id] == .succeeded)
        try await stack.stop()
    }

    /// A client of the replay tests' own migrated database.
    private static func replayDatabase() async throws -> PostgresClient {
        let environment = try await TestServers.shared.environment(name: "replay")
        let client = PostgresClient(configuration: environment.postgres, logger: TestServers.quietLogger)
        do {
            try await Migrator.migrate(client)
        } catch {
            client.close()
            throw error
        }
        return client
    }
}

/// Ids collected by concurrent submitters.
private final class AcceptedIDs: Sendable {
    private let ids = Mutex<[Int64]>([])
    private let stopping = Atomic<Bool>(false)
    func append(_ id: Int64) { ids.withLock { $0.append(id) } }
    var all: [Int64] { ids.withLock { $0 } }
    func stop() { stopping.store(true, ordering: .relaxed) }
    var stopped: Bool { stopping.load(ordering: .relaxed) }
}
