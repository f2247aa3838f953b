@testable import ConveyorAgent
import ConveyorCoordinator
import ConveyorCore
import ConveyorPostgres
import ConveyorRedis
import ConveyorTesting
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// The periodic services' timing, driven by a ``MockClock`` against real Redis and PostgreSQL: what
/// each does on a pass, and that the next pass comes exactly when it should, never earlier.
@Suite("Periodic services on a test clock")
struct ServiceTimingTests {
    private static let logger = TestServers.logger("conveyor.test.timing")

    /// Puts a task envelope on the queue's ready stream and delivers it to a consumer that will never
    /// renew it (a crashed agent), with the given idle time already on its lease.
    private static func strandedEntry(
        _ redis: RedisConnection, keys: RedisKeys, id: Int64, type: String, idle: Duration = .zero
    ) async throws -> String {
        let stream = keys.ready("default")
        try await redis.ensureGroup(stream: stream, group: RedisKeys.agentsGroup)
        let envelope = TaskEnvelope(id: TaskID(id), type: type, params: "{}", correlationID: "c-\(id)", attempt: 1, maxAttempts: 3, enqueuedAtMillis: 0)
        let entry = try await redis.send(RedisConnection.xadd(stream: stream, fields: envelope.fields)).string!
        _ = try await redis.send(RedisCommand("XREADGROUP", ["GROUP", RedisKeys.agentsGroup, "ghost", "COUNT", "1", "STREAMS", stream, ">"]))
        if idle > .zero { try await setIdle(redis, stream: stream, entry: entry, owner: "ghost", idle: idle) }
        return entry
    }

    /// XCLAIM … IDLE: makes an entry look idle for `idle` without waiting that long.
    private static func setIdle(_ redis: RedisConnection, stream: String, entry: String, owner: String, idle: Duration) async throws {
        _ = try await redis.send(RedisCommand("XCLAIM", [
            stream, RedisKeys.agentsGroup, owner, "0", entry, "IDLE", String(idle.milliseconds), "JUSTID",
        ]))
    }

    /// The consumer an entry is delivered to, from XPENDING.
    private static func owner(_ redis: RedisConnection, stream: String, entry: String) async throws -> String? {
        let reply = try await redis.send(RedisCommand("XPENDING", [stream, RedisKeys.agentsGroup, entry, entry, "1"]))
        return reply.array?.first?.array?[1].string
    }

    private static func idle(_ redis: RedisConnection, stream: String, entry: String) async throws -> Int64 {
        let reply = try await redis.send(RedisCommand("XPENDING", [stream, RedisKeys.agentsGroup, entry, entry, "1"]))
        return reply.array?.first?.array?[2].integer ?? -1
    }

    private static func agent(
        _ environment: TestEnvironment, registry: TaskTypeRegistry, handlers: HandlerSet, clock: MockClock
    ) throws -> (Agent, ServiceGroup, Task<Void, any Error>) {
        var configuration = AgentConfiguration(agentID: "timed", redis: environment.redis)
        configuration.registry = registry
        configuration.keys = environment.keys
        configuration.readBlock = .milliseconds(100)
        let agent = try Agent(configuration: configuration, handlers: handlers, clock: clock, logger: logger)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: agent.services, logger: TestServers.quietLogger))
        return (agent, group, Task { try await group.run() })
    }

    @Test("Forwarder: sleeps until the earliest retry is due (at most maximumWait) and runs again at once after a full batch")
    func forwarderTiming() async throws {
        let environment = try await TestServers.shared.environment(name: "fwd")
        let redis = RedisConnection(configuration: environment.redis, logger: Self.logger)
        defer { redis.close() }
        let keys = environment.keys
        let now = try await redis.send(RedisCommand("TIME")).array!.compactMap(\.string)
        let nowMillis = Int64(now[0])! * 1000 + Int64(now[1])! / 1000
        for index in 0..<3 {
            let member = "[\"id\",\"\(index)\",\"type\",\"noop\"]"
            _ = try await redis.send(RedisCommand("ZADD", [keys.delayed("default"), String(nowMillis - 1000), member]))
        }
        _ = try await redis.send(RedisCommand("ZADD", [keys.delayed("default"), String(nowMillis + 60_000), "[\"id\",\"9\",\"type\",\"noop\"]"]))
        let clock = MockClock()
        let forwarder = Forwarder(redis: redis, keys: keys, queues: ["default"], batchSize: 2, maximumWait: .seconds(5), clock: clock, logger: Self.logger)
        var passes = forwarder.passes.values().makeAsyncIterator()
        let running = Task { try await forwarder.run() }

        // Two of three due entries: a full batch, so the next pass follows at once (without the clock, so
        // on a loaded machine it may already have moved the third by the time XLEN is asked).
        #expect(await passes.next()?.nextWait == .zero)
        let afterFirst = try await redis.send(RedisCommand("XLEN", [keys.ready("default")])).integer
        #expect(afterFirst == 2 || afterFirst == 3)
        // The third; the next retry is a minute away, so it sleeps maximumWait.
        #expect(await passes.next()?.nextWait == .seconds(5))
        #expect(try await redis.send(RedisCommand("XLEN", [keys.ready("default")])).integer == 3)
        await clock.waitForSleepers()
        #expect(clock.pendingWaits == [.seconds(5)])
        clock.advance(by: .milliseconds(4999))
        #expect(clock.sleepers == 1)
        clock.advance(by: .milliseconds(1))
        #expect(await passes.next()?.nextWait == .seconds(5))

        // A retry due in 3 s (by Redis' clock, which keeps running): the forwarder's next wait is what is
        // left of those 3 s, not maximumWait; a busy machine may eat some of it, never all.
        let soon = try await redis.send(RedisCommand("TIME")).array!.compactMap(\.string)
        let soonMillis = Int64(soon[0])! * 1000 + Int64(soon[1])! / 1000 + 3000
        _ = try await redis.send(RedisCommand("ZADD", [keys.delayed("default"), String(soonMillis), "[\"id\",\"5\",\"type\",\"noop\"]"]))
        await clock.advanceToNextSleeper()
        let wait = await passes.next()!.nextWait
        #expect(wait > .zero && wait <= .seconds(3))
        running.cancel()
        _ = try? await running.value
    }

    @Test("Reclaimer: passes every half lease and takes over a stranded entry on the first pass after its lease ran out")
    func reclaimerTiming() async throws {
        let environment = try await TestServers.shared.environment(name: "reclaim")
        let registry = TaskTypeRegistry([TaskTypeDefinition(name: "work", handler: "work", lease: .seconds(20))])
        let ran = Promise<Int64>()
        var handlers = HandlerSet.builtIns
        handlers.register("work") { task in
            ran.succeed(task.id.rawValue)
            return nil
        }
        let redis = RedisConnection(configuration: environment.redis, logger: Self.logger)
        defer { redis.close() }
        let stream = environment.keys.ready("default")
        let entry = try await Self.strandedEntry(redis, keys: environment.keys, id: 41, type: "work")
        // Its owner still renews its lease while the agent starts: the idle time is Redis' real time, and a
        // loaded CI machine once took longer than a lease to start the agent. (Made after the start, the
        // entry would go to the agent's own blocked read instead.)
        let renewer = Task {
            while !Task.isCancelled {
                try await Self.setIdle(redis, stream: stream, entry: entry, owner: "ghost", idle: .zero)
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        let clock = MockClock()
        let (agent, group, running) = try Self.agent(environment, registry: registry, handlers: handlers, clock: clock)
        var passes = agent.reclaimer.passes.values().makeAsyncIterator()
        #expect(agent.reclaimer.interval == .seconds(10))

        // The first pass finds the entry idle for less than its lease and leaves it with its owner.
        #expect(await passes.next()?.failed == false)
        renewer.cancel()
        _ = await renewer.result
        #expect(try await Self.owner(redis, stream: stream, entry: entry) == "ghost")
        #expect(!ran.isFulfilled)

        // The owner dies; once its lease has run out, the next pass (half a lease later) takes the entry over.
        try await Self.setIdle(redis, stream: stream, entry: entry, owner: "ghost", idle: .seconds(21))
        await clock.waitForSleepers(5)
        // Reclaimer, lease keeper, heartbeat, cancel watcher and progress flusher are all asleep; only the reclaimer's
        // ten seconds matter here.
        #expect(clock.pendingWaits.contains(.seconds(10)))
        clock.advance(by: .milliseconds(9999))
        #expect(!ran.isFulfilled)
        clock.advance(by: .milliseconds(1))
        #expect(await passes.next()?.failed == false)
        #expect(try await ran.value == 41)
        await group.triggerGracefulShutdown()
        try await running.value
        agent.close()
    }

    @Test("LeaseKeeper: ticks every sixth of the lease and renews a held lease once a third of it has passed")
    func leaseKeeperTiming() async throws {
        let environment = try await TestServers.shared.environment(name: "lease")
        let registry = TaskTypeRegistry([TaskTypeDefinition(name: "work", handler: "work", lease: .seconds(6))])
        let started = Promise<Void>()
        let release = Promise<Void>()
        var handlers = HandlerSet.builtIns
        handlers.register("work") { _ in
            started.succeed(())
            try await release.value
            return nil
        }
        let redis = RedisConnection(configuration: environment.redis, logger: Self.logger)
        defer { redis.close() }
        let stream = environment.keys.ready("default")
        try await redis.ensureGroup(stream: stream, group: RedisKeys.agentsGroup)
        let envelope = TaskEnvelope(id: TaskID(7), type: "work", params: "{}", correlationID: "c", attempt: 1, maxAttempts: 3, enqueuedAtMillis: 0)
        let entry = try await redis.send(RedisConnection.xadd(stream: stream, fields: envelope.fields)).string!
        let clock = MockClock()
        let (agent, group, running) = try Self.agent(environment, registry: registry, handlers: handlers, clock: clock)
        #expect(agent.leaseKeeper.tick == .seconds(1))
        try await started.value
        var passes = agent.leaseKeeper.passes.values().makeAsyncIterator()
        // Pretend the lease is already 5 of its 6 seconds old in Redis; only a renewal makes it young.
        try await Self.setIdle(redis, stream: stream, entry: entry, owner: "timed", idle: .seconds(5))

        // One tick counted: less than a third of the lease, nothing renewed.
        await clock.waitForSleepers(5)
        clock.advance(by: .seconds(1))
        _ = await passes.next()
        #expect(try await Self.idle(redis, stream: stream, entry: entry) >= 5000)
        // Two ticks: a third of the lease, renewed (idle back near zero).
        await clock.waitForSleepers(5)
        clock.advance(by: .seconds(1))
        _ = await passes.next()
        #expect(try await Self.idle(redis, stream: stream, entry: entry) < 5000)
        release.succeed(())
        await group.triggerGracefulShutdown()
        try await running.value
        agent.close()
    }

    /// A migrated coordinator on a test clock whose Reconciler passes every 30 s with no dispatch grace;
    /// its services are not started (a test runs the one it examines).
    private static func timedCoordinator(
        name: String, environment given: TestEnvironment? = nil, instanceID: String = "timed",
        configure: (inout CoordinatorConfiguration) -> Void = { _ in }
    ) async throws -> (TestEnvironment, Coordinator, MockClock) {
        let environment = if let given { given } else { try await TestServers.shared.environment(name: name) }
        var configuration = CoordinatorConfiguration(redis: environment.redis, postgres: environment.postgres, instanceID: instanceID)
        configuration.keys = environment.keys
        configuration.reconcileInterval = .seconds(30)
        configuration.dispatchGrace = .zero
        configure(&configuration)
        let clock = MockClock()
        let coordinator = Coordinator(configuration: configuration, clock: clock, logger: logger)
        try await coordinator.migrate()
        return (environment, coordinator, clock)
    }

    /// A task PostgreSQL has as `running` and dispatched (an attempt in progress), put on `heldIn` (a
    /// ready stream) when given, as the Redis that holds it would.
    private static func runningTask(on coordinator: Coordinator, correlationID: String, heldIn ready: String? = nil) async throws -> TaskID {
        let id = try await coordinator.store.insert([NewTask(
            type: "noop", queue: "default", params: "{}", correlationID: correlationID, idempotencyKey: nil, maxAttempts: 3, createdAtMillis: 0)])[0].id
        _ = try await coordinator.postgres.withSession { session in
            try session.query("UPDATE tasks SET status = 'running', dispatched = true WHERE id = $1", [id.description]).affected
        }
        if let ready { _ = try await coordinator.redis.send(RedisConnection.xadd(stream: ready, fields: [("id", id.description)])) }
        return id
    }

    @Test("Reconciler: one pass per interval; a committed task Redis never got is dispatched on the next pass")
    func reconcilerTiming() async throws {
        let (environment, coordinator, clock) = try await Self.timedCoordinator(name: "recon")
        defer { coordinator.close() }
        var passes = coordinator.reconciler.passes.values().makeAsyncIterator()
        let running = Task { try await coordinator.reconciler.run() }
        #expect(await passes.next()?.failed == false)
        await clock.waitForSleepers()
        #expect(clock.pendingWaits == [.seconds(30)])

        // A committed row that never reached Redis (as after a crash between COMMIT and XADD).
        let inserted = try await coordinator.store.insert([NewTask(
            type: "noop", queue: "default", params: "{}", correlationID: "c", idempotencyKey: nil, maxAttempts: 3, createdAtMillis: 0)])
        let ready = environment.keys.ready("default")
        clock.advance(by: .milliseconds(29_999))
        #expect(try await coordinator.redis.send(RedisCommand("XLEN", [ready])).integer == 0)
        clock.advance(by: .milliseconds(1))
        #expect(await passes.next()?.failed == false)
        let entries = try await coordinator.redis.send(RedisCommand("XRANGE", [ready, "-", "+"]))
        #expect(entries.array?.count == 1)
        #expect(try StreamEntry(reply: entries.array![0]).fields?["id"] == inserted[0].id.description)
        running.cancel()
        _ = try? await running.value
    }

    @Test("Reconciler: a new deployment's first pass, finding no unfinished task, starts no sweeps: a task that is running later, in no Redis, is left to its lease")
    func noSweepsWithoutUnfinishedWork() async throws {
        let (environment, coordinator, clock) = try await Self.timedCoordinator(name: "nosweep") { $0.reconcileSweep = .seconds(60) }
        defer { coordinator.close() }
        var passes = coordinator.reconciler.passes.values().makeAsyncIterator()
        let running = Task { try await coordinator.reconciler.run() }
        #expect(await passes.next()?.failed == false)
        // The same state the sweep test puts back (running, dispatched, in no Redis) cannot come from before
        // this Redis: it stands here for "no lookup ran", which only a sweep would have noticed.
        _ = try await Self.runningTask(on: coordinator, correlationID: "c")
        let ready = environment.keys.ready("default")
        for _ in 0..<3 {
            await clock.advanceToNextSleeper()
            let pass = await passes.next()
            #expect(pass?.failed == false)
        }
        #expect(try await coordinator.redis.send(RedisCommand("XLEN", [ready])).integer == 0, "90 s of passes, no sweep")
        running.cancel()
        _ = try? await running.value
    }

    @Test("Reconciler: after a Redis change, the sweep, once its interval is counted, puts back a running task that no Redis holds")
    func reconcilerSweep() async throws {
        let (environment, coordinator, clock) = try await Self.timedCoordinator(name: "sweep") { $0.reconcileSweep = .seconds(60) }
        defer { coordinator.close() }
        var passes = coordinator.reconciler.passes.values().makeAsyncIterator()
        let running = Task { try await coordinator.reconciler.run() }
        // A task running when the first pass comes, held by this Redis: PostgreSQL has unfinished work, so
        // this Redis, met for the first time, might have lost some: a change, and the sweeps begin.
        let ready = environment.keys.ready("default")
        _ = try await Self.runningTask(on: coordinator, correlationID: "held", heldIn: ready)
        #expect(await passes.next()?.failed == false)
        #expect(try await coordinator.redis.send(RedisCommand("XLEN", [ready])).integer == 1, "the held task was found, not dispatched again")

        // An attempt from before a Redis loss, recorded as running after the recheck period: dispatched,
        // running, and in no Redis.
        let stranded = try await Self.runningTask(on: coordinator, correlationID: "c")
        await clock.advanceToNextSleeper()
        #expect(await passes.next()?.failed == false)
        #expect(try await coordinator.redis.send(RedisCommand("XLEN", [ready])).integer == 1, "no sweep after 30 of its 60 s")
        await clock.advanceToNextSleeper()
        #expect(await passes.next()?.failed == false)
        let entries = try await coordinator.redis.send(RedisCommand("XRANGE", [ready, "-", "+"]))
        #expect(entries.array?.count == 2)
        #expect(try StreamEntry(reply: entries.array![1]).fields?["id"] == stranded.description)
        running.cancel()
        _ = try? await running.value
    }

    /// The leader that saw a Redis change may die before its rechecks and sweeps (the chaos run killed one
    /// 0.6 s after it recorded the change): tasks an agent started before the loss, recorded `running`
    /// afterwards, stayed `running` for good, since the next leader saw no change of its own.
    @Test("Reconciler: a coordinator that takes the lead in the hour after a Redis change another leader saw looks up every unfinished task, once, and again on its next pass if its first one failed")
    func newLeaderTakesOverTheLookups() async throws {
        // Redis of its own: the test makes it refuse GET for a moment.
        let environment = try await TestServers.shared.environment(name: "takeover", ownRedis: true)
        let (_, first, _) = try await Self.timedCoordinator(name: "takeover", environment: environment)
        // Unfinished work when the first leader meets this Redis: a change, recorded with its time.
        let ready = environment.keys.ready("default")
        _ = try await Self.runningTask(on: first, correlationID: "held", heldIn: ready)
        let seen = try await first.reconciler.reconcileOnce()
        #expect(seen.leader && seen.redisChanged)
        first.close()

        // An attempt from before the loss, recorded as running after the first leader died: dispatched,
        // running, and in no Redis.
        let (_, second, _) = try await Self.timedCoordinator(name: "takeover", environment: environment, instanceID: "timed-2")
        defer { second.close() }
        let stranded = try await Self.runningTask(on: second, correlationID: "stranded")
        // Its first pass as leader fails (Redis refuses GET, so its identity cannot be read); PostgreSQL
        // frees the first leader's lock when it notices the closed session.
        let redis = RedisConnection(configuration: environment.redis, logger: TestServers.quietLogger)
        defer { redis.close() }
        _ = try await redis.send(RedisCommand("ACL", ["SETUSER", "default", "-get"]))
        var failedAsLeader = false
        for _ in 0..<50 where !failedAsLeader {
            do {
                let report = try await second.reconciler.reconcileOnce()
                #expect(!report.leader, "a pass as leader cannot succeed while GET is refused")
                try await Task.sleep(for: .milliseconds(100))
            } catch {
                failedAsLeader = true
            }
        }
        #expect(failedAsLeader)
        _ = try await redis.send(RedisCommand("ACL", ["SETUSER", "default", "+get"]))

        let report = try await second.reconciler.reconcileOnce()
        #expect(report.leader && !report.redisChanged)
        #expect(report.redispatched == 1, "\(report)")
        let entries = try await second.redis.send(RedisCommand("XRANGE", [ready, "-", "+"]))
        #expect(entries.array?.count == 2)
        #expect(try StreamEntry(reply: entries.array![1]).fields?["id"] == stranded.description)
        #expect(try await second.reconciler.reconcileOnce().checked == 0, "a change is taken over once")
    }
}
