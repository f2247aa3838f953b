import ConveyorCore
import ConveyorMetricNames
import ConveyorObservability
import ConveyorPostgres
import ConveyorRedis
import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Puts back into Redis what PostgreSQL says exists but Redis does not hold: the safety net behind
/// "every task that got a 201 reaches a terminal state" (DESIGN §3).
///
/// Checked every `interval` by one coordinator at a time (the holder of a PostgreSQL advisory lock on a
/// connection of its own; the lock goes with the session, so a dead leader is replaced within an
/// interval):
/// - **Committed but never dispatched.** A coordinator died between COMMIT and XADD (or the COMMIT's
///   outcome was unknown). Rows still `queued`, with no event recorded and older than `dispatchGrace`,
///   are looked up in Redis (``RedisCensus``): present ones are marked dispatched, missing ones are
///   XADDed again.
/// - **Redis restarted or lost its data.** Redis' identity is its epoch key (set if missing, so an empty
///   Redis gets a new one) plus its run id (so a restart from an AOF that lost its last second is noticed
///   too; servers that refuse INFO are judged by the epoch alone). When it differs from the identity
///   recorded in `conveyor_meta`, every unfinished task that was dispatched is read, then looked up,
///   and the missing ones are dispatched again; then the new identity is recorded. Undispatched ones are
///   left to the first case. The lookup is repeated on every pass for `dispatchGrace` afterwards (see
///   ``recheckUntil``). Not after a first pass against any Redis (no identity recorded yet: a new
///   deployment) that found no unfinished task at all: every task submitted since went to this Redis,
///   so there is nothing to look for, and the lookups, which read every row of `tasks` and every entry
///   of the queues' streams, only slowed the broker down (in a load run against a new stack, the
///   rechecks filled most of its first 30 s, and a sweep came every minute for the hour after). After
///   a real change they run even then: an old primary still writable for a moment, or a coordinator
///   still connected to it, may add tasks the walk could not see.
/// - **The sweep.** For ``sweepPeriod`` after a Redis change, the same lookup runs again every
///   `sweepInterval`. It closes the one race the cases above leave: an attempt from before the Redis
///   loss whose `running` event is recorded only after the recheck period (the Recorder was held up, by
///   a PostgreSQL outage say) turns an undispatched row into a dispatched `running` one that no Redis
///   holds. The chaos run found such tasks, left `running` for good. Not always on: the lookup reads
///   every row of `tasks`.
/// - **A new leader in the hour after a change.** A leader that sees a change records it in
///   `conveyor_meta` (`redis_changed_at`) before the new identity. A leader that finds a change recorded
///   less than ``sweepPeriod`` ago (by PostgreSQL's clock) that it neither recorded nor took over yet
///   looks up every unfinished task at once, then rechecks and sweeps for what is left of the two
///   periods: the leader that saw the change may have died before its rechecks (the chaos run killed it
///   0.6 s after it recorded the change, and tasks an agent had started before the loss stayed `running`
///   for good). A takeover counts once its lookup succeeded, so a pass that fails first is repeated.
///
/// Every candidate row is read before the census and re-read after it, so a task that finished or moved
/// meanwhile is left alone. The leader lock is checked again before each dispatch. What remains is
/// at-least-once: a task may run twice, never zero times.
public final class Reconciler: Service, Sendable {
    /// What one pass did.
    public struct Report: Sendable, Hashable {
        public var leader = false
        public var redisChanged = false
        /// Tasks looked up in Redis.
        public var checked = 0
        /// Tasks put back on a ready stream.
        public var redispatched = 0
    }

    private let store: TaskStore
    private let meta: MetaStore
    private let lock: PostgresConnection
    /// A connection of its own: a census reads whole streams, which would hold up a shared pipeline.
    private let redis: any RedisClient
    private let keys: RedisKeys
    /// The queues whose slots a Redis Cluster's identity covers (a shard serving none of them cannot
    /// hold their tasks).
    private let queues: [String]
    private let interval: Duration
    private let dispatchGrace: Duration
    private let sweepInterval: Duration
    /// Writes back what Redis keeps besides tasks (the pauses) after Redis lost its data: before any task
    /// is re-dispatched, so that a paused type's tasks are parked again rather than run.
    private let restoreRedisState: @Sendable () async throws -> Void
    /// Clock time counted towards the next sweep (from the passes' own clock, so tests drive it).
    private let sinceSweep = Mutex<Duration>(.zero)
    /// Sweeps run until then (set at each Redis change this leader sees or takes over; in memory, like
    /// ``recheckUntil``).
    private let sweepUntil = Mutex<ContinuousClock.Instant?>(nil)
    /// How long after a Redis change the sweeps go on: longer than any Recorder backlog should last.
    static let sweepPeriod = Duration.seconds(3600)
    private let clock: any Clock<Duration>
    private let logger: Logger
    /// Fired after every pass (tests wait on it).
    public let passes = TestSignal<PeriodicService.PassOutcome>()
    /// After Redis lost data, the unfinished tasks are looked up again on every pass until then. An
    /// attempt an agent was running when Redis went away still reports `running` to the new Redis (its
    /// completion, whose XACK no longer matches, reports nothing), so its row can change during the first
    /// pass and be skipped as "moved on"; a later pass finds it unchanged and missing. In memory, from the
    /// change time in `conveyor_meta` for a leader that did not see the change itself.
    private let recheckUntil = Mutex<ContinuousClock.Instant?>(nil)
    /// The recorded Redis change (its `redis_changed_at` value) this instance recorded or took over the
    /// lookups for: a leader takes over a change only once, and only after its lookup succeeded.
    private let handledChange = Mutex<String?>(nil)

    static let identityKey = "redis_identity"
    /// The last Redis change a leader saw: a stamp (its wall-clock ms and the new identity) whose row's
    /// `updated_at` dates it by PostgreSQL's clock; written before the new identity.
    static let changedAtKey = "redis_changed_at"
    /// The advisory lock's two keys: "conv" and "recn" in ASCII.
    static let lockKeys = (Int32(0x636F_6E76), Int32(0x7265_636E))
    static let pageSize = 5000
    static let backoff = Backoff(base: .milliseconds(200), maximum: .seconds(10))

    /// - Parameters:
    ///   - lock: a connection of its own, holding the leader lock for as long as it lives.
    ///   - redis: a connection of its own (see ``redis``).
    public init(
        store: TaskStore, meta: MetaStore, lock: PostgresConnection, redis: any RedisClient, keys: RedisKeys, queues: [String] = [],
        interval: Duration, dispatchGrace: Duration, sweepInterval: Duration = CoordinatorConfiguration.defaultReconcileSweep,
        clock: any Clock<Duration> = ContinuousClock(), logger: Logger,
        restoreRedisState: @escaping @Sendable () async throws -> Void = {}
    ) {
        self.restoreRedisState = restoreRedisState
        self.sweepInterval = sweepInterval
        self.clock = clock
        self.store = store
        self.meta = meta
        self.lock = lock
        self.redis = redis
        self.keys = keys
        self.queues = queues
        self.interval = interval
        self.dispatchGrace = dispatchGrace
        self.logger = logger
    }

    public func run() async throws {
        await PeriodicService(
            name: "reconciling", interval: interval, failureBackoff: Self.backoff, clock: clock, logger: logger, passes: passes
        ) { sincePreviousPass in
            let sweeping = self.sweepUntil.withLock { $0.map { ContinuousClock.now < $0 } ?? false }
            let sweep = sweeping && self.sinceSweep.withLock { since in
                since += sincePreviousPass
                return since >= self.sweepInterval
            }
            let report = try await self.reconcileOnce(sweepUnfinished: sweep)
            if sweep && report.leader { self.sinceSweep.withLock { $0 = .zero } }
            if report.redispatched > 0 || report.redisChanged {
                self.logger.notice("reconciled", metadata: [
                    "redis_changed": "\(report.redisChanged)", "checked": "\(report.checked)", "redispatched": "\(report.redispatched)",
                ])
            }
            return nil
        }.run()
    }

    /// One pass; does nothing unless this coordinator holds (or can take) the leader lock.
    ///
    /// - Parameter sweepUnfinished: look up every unfinished dispatched task in Redis, as after a Redis
    ///   change (see the sweep in the type's documentation).
    public func reconcileOnce(sweepUnfinished: Bool = false) async throws -> Report {
        var report = Report()
        guard try await holdLeadership() else { return report }
        report.leader = true
        let identity = try await redisIdentity()
        let recorded = try await meta.entries([Self.identityKey, Self.changedAtKey])
        let known = recorded[Self.identityKey]?.value
        let change = recorded[Self.changedAtKey]
        if known != identity {
            report.redisChanged = true
            if known == nil {
                logger.notice("first reconciliation against this Redis", metadata: ["identity": "\(identity)"])
            } else {
                logger.warning("Redis restarted or lost its data; looking for unfinished tasks it no longer holds", metadata: ["identity": "\(identity)"])
            }
            try await restoreRedisState()
            let unfinishedRows = try await recoverUnfinished(into: &report)
            // A new deployment with no unfinished task yet has no older Redis to have lost anything.
            let lostSome = known != nil || unfinishedRows > 0
            if lostSome {
                let stamp = "\(WallClock.nowMillis())/\(identity)"
                try await meta.set(Self.changedAtKey, to: stamp)
                handledChange.withLock { $0 = stamp }
            }
            try await meta.set(Self.identityKey, to: identity)
            if lostSome { startRechecks(sinceChange: .zero) }
        } else if let change, change.age < Self.sweepPeriod, change.value != handledChange.withLock({ $0 }) {
            // A change another leader recorded, maybe dying before its rechecks: look now, then recheck
            // and sweep for what is left of the periods.
            logger.notice("took over the lookups after a Redis change another leader saw", metadata: ["since_change": "\(change.age)"])
            startRechecks(sinceChange: change.age)
            try await recoverUnfinished(into: &report)
            handledChange.withLock { $0 = change.value }
        } else if sweepUnfinished {
            try await recoverUnfinished(into: &report)
        } else if let until = recheckUntil.withLock({ $0 }), ContinuousClock.now < until {
            try await recoverUnfinished(into: &report)
        }
        try await recoverUndispatched(into: &report)
        return report
    }

    /// Rechecks until `dispatchGrace` and sweeps until ``sweepPeriod`` after the change.
    private func startRechecks(sinceChange: Duration) {
        recheckUntil.withLock { $0 = .now + dispatchGrace - sinceChange }
        sweepUntil.withLock { $0 = .now + Self.sweepPeriod - sinceChange }
        sinceSweep.withLock { $0 = .zero }
    }

    // MARK: - Leadership and identity

    private func holdLeadership() async throws -> Bool {
        let (high, low) = Self.lockKeys
        return try await lock.withSession { session in
            // Re-taking a lock we hold would stack it: check first (CASE evaluates lazily).
            try session.query("""
                SELECT CASE WHEN EXISTS (
                    SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
                      AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 2 AND granted
                ) THEN true ELSE pg_try_advisory_lock($1::integer, $2::integer) END
                """, [String(high), String(low)], name: "reconciler lock").rows.first?[0] == "t"
        }
    }

    /// `<epoch>/<run id>`; the epoch is created when missing, which is how an emptied Redis shows.
    private func redisIdentity() async throws -> String {
        if let cluster = redis as? RedisClusterClient { return try await clusterIdentity(cluster) }
        let replies = try await redis.send([
            RedisCommand("SET", [keys.epoch, UUID().uuidString, "NX"]),
            RedisCommand("GET", [keys.epoch]),
            RedisCommand("INFO", ["server"]),
        ])
        guard let epoch = replies[1].string else {
            throw RedisError(.unexpectedReply, replies[1].errorMessage ?? "no epoch", command: "GET")
        }
        return "\(epoch)/\(Self.runID(inInfo: replies[2].string ?? ""))"
    }

    /// On a Redis Cluster: `<queue>=<epoch>/<run id>,…`, an epoch per queue in the queue's own slot and
    /// the run id of the primary serving it. A shard restarted without its data loses its queues'
    /// epochs; a failover (which may drop the last acknowledged writes) or a slot moved elsewhere
    /// changes their primary. Either changes the identity, and the pass looks up every unfinished task.
    private func clusterIdentity(_ cluster: RedisClusterClient) async throws -> String {
        let queues = Set(queues).sorted()
        let replies = try await cluster.send(queues.flatMap { queue in
            [RedisCommand("SET", [keys.epoch(queue), UUID().uuidString, "NX"]), RedisCommand("GET", [keys.epoch(queue)])]
        })
        let topology = try await cluster.topology()
        var runIDs: [RedisNodeAddress: Substring] = [:]
        for node in Set(queues.compactMap { topology.owner(of: HashSlot.of(keys.epoch($0))) }) {
            let info = try await cluster.connection(to: node).send(RedisCommand("INFO", ["server"])).string ?? ""
            runIDs[node] = Self.runID(inInfo: info)
        }
        return try queues.enumerated().map { index, queue throws(RedisError) in
            guard let epoch = replies[2 * index + 1].string else {
                throw RedisError(.unexpectedReply, replies[2 * index + 1].errorMessage ?? "no epoch", command: "GET")
            }
            let runID = topology.owner(of: HashSlot.of(keys.epoch(queue))).flatMap { runIDs[$0] } ?? "-"
            return "\(queue)=\(epoch)/\(runID)"
        }.joined(separator: ",")
    }

    /// The `run_id` an INFO reply names. Some managed servers refuse INFO: then only the epoch tells,
    /// and a restart that kept the data but lost its last second goes unnoticed.
    private static func runID(inInfo info: String) -> Substring {
        info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("run_id:") }?.dropFirst("run_id:".count) ?? "-"
    }

    // MARK: - The two recoveries

    /// Returns how many unfinished rows PostgreSQL held, undispatched ones included.
    @discardableResult
    private func recoverUnfinished(into report: inout Report) async throws -> Int {
        // Every row first, then one census: a row read after the census could belong to a task that
        // moved (and was recorded) while the census ran, and would look missing without being so. Rows
        // are read a page at a time and only their small state is kept; the full rows of the missing
        // ones are read again, a page at a time, after the census.
        var candidates: [UnfinishedTaskState] = []
        var unfinishedRows = 0
        var after: TaskID?
        repeat {
            guard !Task.isShuttingDownGracefully else { throw CancellationError() }
            let page = try await store.unfinishedDispatched(after: after, limit: Self.pageSize)
            candidates.append(contentsOf: page.tasks)
            unfinishedRows += page.unfinishedRows
            after = page.lastID
        } while after != nil
        report.checked += candidates.count
        var census: [String: Set<TaskID>] = [:]
        try await takeCensus(of: Set(candidates.map(\.queue)), into: &census)
        let missing = candidates.filter { census[$0.queue]?.contains($0.id) != true }
        for start in stride(from: 0, to: missing.count, by: Self.pageSize) {
            let still = try await store.unchangedRows(Array(missing[start..<min(start + Self.pageSize, missing.count)]))
            try await dispatch(still)
            report.redispatched += still.count
        }
        return unfinishedRows
    }

    private func recoverUndispatched(into report: inout Report) async throws {
        var census: [String: Set<TaskID>] = [:]
        while true {
            let candidates = try await store.undispatched(olderThan: dispatchGrace, limit: Self.pageSize)
            guard !candidates.isEmpty else { return }
            report.checked += candidates.count
            let missing = try await missing(candidates, census: &census)
            let still = try await store.unchangedUndispatched(missing)
            try await dispatch(still)
            report.redispatched += still.count
            try await store.markDispatched(candidates.map(\.id))
            if candidates.count < Self.pageSize { return }
        }
    }

    /// The tasks among `tasks` that Redis holds nowhere; takes each queue's census once per pass.
    private func missing(_ tasks: [UnfinishedTask], census: inout [String: Set<TaskID>]) async throws -> [UnfinishedTask] {
        try await takeCensus(of: Set(tasks.map(\.queue)), into: &census)
        return tasks.filter { census[$0.queue]?.contains($0.id) != true }
    }

    private func takeCensus(of queues: Set<String>, into census: inout [String: Set<TaskID>]) async throws {
        let counter = RedisCensus(redis: redis, keys: keys)
        for queue in queues where census[queue] == nil {
            census[queue] = try await counter.taskIDs(in: queue)
        }
    }

    /// XADDs the next attempt of each task to its queue's ready stream, in one pipeline, if this
    /// coordinator still leads (a leader whose session died mid-pass must not dispatch next to the new one).
    private func dispatch(_ tasks: [UnfinishedTask]) async throws {
        guard !tasks.isEmpty else { return }
        guard try await holdLeadership() else { throw ReconcilerError.leadershipLost }
        for stream in Set(tasks.map { keys.ready($0.queue, priority: $0.priority) }) {
            try await redis.ensureGroup(stream: stream, group: RedisKeys.agentsGroup)
        }
        let now = WallClock.nowMillis()
        let replies = try await redis.send(tasks.map { task in
            let envelope = task.envelope
            // A scheduled task not yet due waits in the delayed set again; a due one goes straight to work.
            if task.status == .scheduled, let due = task.runAtMillis, due > now {
                return Submitter.park(envelope, dueAtMillis: due, in: keys.delayed(task.queue))
            }
            return RedisConnection.xadd(stream: keys.ready(task.queue, priority: task.priority), envelope: envelope)
        })
        if let failure = replies.first(where: { $0.errorMessage != nil }) {
            throw RedisError(.commandFailed, failure.errorMessage!, command: "XADD")
        }
        Counter(label: MetricsCatalog.reconciled.name).increment(by: tasks.count)
        for task in tasks {
            logger.warning("re-dispatched a task Redis did not hold", metadata: [
                LogKeys.taskID: "\(task.id)", LogKeys.taskType: "\(task.type)", LogKeys.correlationID: "\(task.correlationID)",
                "status": "\(task.status.rawValue)",
            ])
        }
    }
}

enum ReconcilerError: Error, CustomStringConvertible {
    case leadershipLost

    var description: String { "lost the leader lock during a pass; the new leader carries on" }
}
