import ConveyorAgent
import ConveyorCoordinator
import ConveyorCore
import ConveyorPostgres
import ConveyorRedis
import ConveyorTesting
import Testing

@Suite("Reconciler")
struct ReconcilerTests {
    private let registry = TaskTypeRegistry([
        TaskTypeDefinition(name: "work", maxConcurrent: 10, maxAttempts: 3, handler: "work"),
    ])

    /// Commits tasks the way the Submitter does, but never XADDs them: a coordinator that died after COMMIT.
    private func commitWithoutDispatch(_ count: Int, on stack: Stack) async throws -> [Int64] {
        let now = WallClock.nowMillis()
        let tasks = (0..<count).map { index in
            NewTask(type: "work", queue: TaskTypeDefinition.defaultQueue, params: "{}", correlationID: "lost-\(index)", idempotencyKey: nil, maxAttempts: 3, createdAtMillis: now)
        }
        return try await stack.coordinator.store.insert(tasks).map(\.id.rawValue)
    }

    /// A stack whose coordinator's periodic services run their first pass and then sleep on a test clock
    /// that never moves: the test's own passes then never overlap the Reconciler service's.
    private func quietStack(_ configure: @escaping (inout CoordinatorConfiguration) -> Void) async throws -> Stack {
        let clock = MockClock()
        let stack = try await Stack.start(registry: registry, agents: 0, coordinatorClock: clock, configure: configure)
        // PartitionMaintainer, Retention, RedisJanitor, Forwarder, Reconciler, Scheduler and WorkflowSweeper,
        // each after its first pass (six returned while the Reconciler's first pass could still run).
        await clock.waitForSleepers(7)
        return stack
    }

    private func readyLength(_ stack: Stack) async throws -> Int64 {
        try await stack.coordinator.redis.send(RedisCommand("XLEN", [stack.environment.keys.ready(TaskTypeDefinition.defaultQueue)])).integer ?? -1
    }

    @Test("a task committed but never dispatched is dispatched once its grace period has passed, and runs once")
    func committedButUndispatchedTaskRuns() async throws {
        let log = ExecutionLog()
        var handlers = HandlerSet.builtIns
        handlers.register("work", log.handler())
        let stack = try await Stack.start(registry: registry, agents: 1, handlers: handlers) { configuration in
            configuration.dispatchGrace = .milliseconds(300)
            configuration.reconcileInterval = .milliseconds(100)
        }
        let ids = try await commitWithoutDispatch(3, on: stack)
        let statuses = try await stack.waitUntilTerminal(ids, timeout: .seconds(20))
        #expect(statuses.values.allSatisfy { $0 == .succeeded })
        #expect(ids.allSatisfy { log.executions[$0] == 1 }, "\(log.executions)")
        try await stack.stop()
    }

    @Test("tasks waiting in the ready stream are marked dispatched, never added twice; only missing ones are added")
    func backlogIsNotDuplicated() async throws {
        let stack = try await quietStack { configuration in
            configuration.dispatchGrace = .zero
            configuration.reconcileInterval = .seconds(3600)
        }
        for _ in 0..<3 { _ = try await stack.submit("work") }
        _ = try await commitWithoutDispatch(2, on: stack)
        _ = try await stack.coordinator.reconciler.reconcileOnce()
        let second = try await stack.coordinator.reconciler.reconcileOnce()
        #expect(second.leader)
        #expect(second.checked == 0, "every candidate was settled by the first pass")
        #expect(try await readyLength(stack) == 5)
        try await stack.stop()
    }

    @Test("when Redis loses its data, every unfinished task is dispatched again and then runs")
    func redisDataLossIsRepaired() async throws {
        let stack = try await quietStack { configuration in
            configuration.dispatchGrace = .zero
            configuration.reconcileInterval = .seconds(3600)
        }
        var ids: [Int64] = []
        for _ in 0..<4 { ids.append(try await stack.submit("work")) }
        _ = try await stack.coordinator.reconciler.reconcileOnce()  // marks them dispatched (they are in Redis)

        // Lose every key of this test's prefix, as a Redis restarted without its data would.
        let keys = try await stack.coordinator.redis.send(RedisCommand("KEYS", [stack.environment.keys.prefix + ":*"]))
        let names = (keys.array ?? []).compactMap(\.string)
        #expect(!names.isEmpty)
        _ = try await stack.coordinator.redis.send(RedisCommand("DEL", names))

        let report = try await stack.coordinator.reconciler.reconcileOnce()
        #expect(report.redisChanged)
        #expect(report.redispatched == 4)
        #expect(try await readyLength(stack) == 4)
        let again = try await stack.coordinator.reconciler.reconcileOnce()
        #expect(!again.redisChanged && again.redispatched == 0)

        let log = ExecutionLog()
        var handlers = HandlerSet.builtIns
        handlers.register("work", log.handler())
        let agent = try stack.startAgent(id: "after-loss", registry: registry, handlers: handlers)
        let statuses = try await stack.waitUntilTerminal(ids, timeout: .seconds(20))
        #expect(statuses.values.allSatisfy { $0 == .succeeded })
        #expect(ids.allSatisfy { log.executions[$0] == 1 }, "\(log.executions)")
        try await agent.stop()
        try await stack.stop()
    }

    @Test("after Redis lost its data, an attempt still reporting `running` does not hide its task, and the lookup repeats for the grace period")
    func orphanedAttemptDoesNotHideTask() async throws {
        let stack = try await quietStack { configuration in
            configuration.dispatchGrace = .seconds(2)
            configuration.reconcileInterval = .seconds(3600)
        }
        var ids: [Int64] = []
        for _ in 0..<2 { ids.append(try await stack.submit("work")) }
        try await Task.sleep(for: .seconds(2))
        _ = try await stack.coordinator.reconciler.reconcileOnce()  // marks them dispatched (they are in Redis)

        let keys = try await stack.coordinator.redis.send(RedisCommand("KEYS", [stack.environment.keys.prefix + ":*"]))
        _ = try await stack.coordinator.redis.send(RedisCommand("DEL", (keys.array ?? []).compactMap(\.string)))
        // An agent that was running the first task before the loss reports it to the new Redis.
        let events = stack.environment.keys.events(TaskTypeDefinition.defaultQueue)
        _ = try await stack.coordinator.redis.send(RedisConnection.xadd(stream: events, fields: LifecycleEvent(
            taskID: TaskID(rawValue: ids[0]), status: .running, attempt: 1, agent: "orphan", atMillis: WallClock.nowMillis(),
            correlationID: "c", type: "work").fields))

        // Once the Recorder has recorded it (it meets the deleted group first and backs off a random
        // while), so that no pass below races it: a row that changes during a pass is left to the next.
        for _ in 0..<200 where try await stack.task(ids[0])["status"]?.stringValue != "running" {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(try await stack.task(ids[0])["status"]?.stringValue == "running")

        let report = try await stack.coordinator.reconciler.reconcileOnce()
        #expect(report.redisChanged && report.redispatched == 2)
        // Within the grace period every pass looks again: entries lost again are put back again.
        _ = try await stack.coordinator.redis.send(RedisCommand("DEL", [stack.environment.keys.ready(TaskTypeDefinition.defaultQueue)]))
        let again = try await stack.coordinator.reconciler.reconcileOnce()
        #expect(!again.redisChanged && again.redispatched == 2)
        try await Task.sleep(for: .seconds(2))
        let later = try await stack.coordinator.reconciler.reconcileOnce()
        #expect(later.checked == 0, "after the grace period only undispatched rows are looked at")
        try await stack.stop()
    }

    @Test("only one coordinator reconciles at a time; another takes over when the leader's session ends")
    func oneLeaderAtATime() async throws {
        let stack = try await Stack.start(registry: registry, agents: 0) { configuration in
            configuration.reconcileInterval = .seconds(3600)
        }
        // The stack's own coordinator may hold the lock already: stop it first.
        try await stack.stop()
        let environment = stack.environment
        let postgres = PostgresClient(configuration: environment.postgres, logger: TestServers.quietLogger)
        let redis = RedisConnection(configuration: environment.redis, logger: TestServers.quietLogger)
        defer {
            postgres.close()
            redis.close()
        }
        func reconciler(_ lock: PostgresConnection) -> Reconciler {
            Reconciler(
                store: TaskStore(client: postgres), meta: MetaStore(client: postgres), lock: lock,
                redis: redis, keys: environment.keys, interval: .seconds(3600),
                dispatchGrace: .seconds(30), logger: TestServers.quietLogger)
        }
        let firstLock = PostgresConnection(url: stack.environment.postgres.url, name: "first", logger: TestServers.quietLogger)
        let secondLock = PostgresConnection(url: stack.environment.postgres.url, name: "second", logger: TestServers.quietLogger)
        let first = reconciler(firstLock)
        let second = reconciler(secondLock)
        // The stopped coordinator's server session ends a moment after its socket closes: until then
        // it still holds the lock, so the first reconciler waits for it as any successor would.
        var firstLeads = false
        for _ in 0..<50 where !firstLeads {
            firstLeads = try await first.reconcileOnce().leader
            if !firstLeads { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(firstLeads)
        #expect(try await !second.reconcileOnce().leader)
        #expect(try await first.reconcileOnce().leader, "the leader keeps its lock without stacking it")
        firstLock.close()
        var tookOver = false
        for _ in 0..<50 where !tookOver {
            tookOver = try await second.reconcileOnce().leader
            if !tookOver { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(tookOver)
        secondLock.close()
    }
}
