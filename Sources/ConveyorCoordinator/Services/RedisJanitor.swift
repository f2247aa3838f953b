import ConveyorCore
import ConveyorMetricNames
import ConveyorObservability
import ConveyorRedis
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Keeps each queue's Redis keys bounded by what is still live work:
/// - trims the dead stream (and its index) to ``deadLetterLimit`` letters, oldest first; the rows stay
///   in PostgreSQL until retention, and a redrive by id or of all dead tasks still finds them;
/// - removes consumers that hold nothing and have been idle for ``idleConsumerAfter`` from the agents'
///   and the Recorders' groups (every agent start adds one; a live one that is removed comes back at its
///   next read);
/// - removes from the cancelled set the ids of tasks Redis has not held in two censuses a pass apart (a
///   cancel that raced the task's completion leaves one; agents remove the others as they drop them).
///   Two, because one census can miss a task in passing: one committed but not yet added, or moving
///   between keys while they are read.
///
/// Any number of coordinators may run it: each step is an atomic script or is safe to repeat.
public final class RedisJanitor: Service, Sendable {
    let redis: any RedisClient
    let keys: RedisKeys
    let queues: [String]
    let deadLetterLimit: Int
    let idleConsumerAfter: Duration
    let interval: Duration
    let clock: any Clock<Duration>
    let logger: Logger
    /// Fired after every pass (tests wait on it).
    public let passes = TestSignal<PeriodicService.PassOutcome>()
    static let trimPage = 1000
    /// Per queue, the cancel marks the previous census did not find in Redis.
    private let unheld = Mutex<[String: Set<TaskID>]>([:])

    /// What one pass removed.
    public struct Sweep: Sendable, Hashable {
        public var deadLettersTrimmed = 0
        public var consumersRemoved = 0
        public var cancelMarksRemoved = 0

        public init() {}
    }

    /// - Parameter redis: a connection of its own: the cancelled-set check reads whole streams.
    public init(
        redis: any RedisClient, keys: RedisKeys, queues: [String], deadLetterLimit: Int, idleConsumerAfter: Duration,
        interval: Duration = .seconds(60), clock: any Clock<Duration> = ContinuousClock(), logger: Logger
    ) {
        self.redis = redis
        self.keys = keys
        self.queues = queues
        self.deadLetterLimit = deadLetterLimit
        self.idleConsumerAfter = idleConsumerAfter
        self.interval = interval
        self.clock = clock
        self.logger = logger
    }

    public func run() async throws {
        await PeriodicService(name: "tidying Redis", interval: interval, clock: clock, logger: logger, passes: passes) { _ in
            let sweep = try await self.sweepOnce()
            if sweep != Sweep() {
                self.logger.info("tidied Redis", metadata: [
                    "dead_letters_trimmed": "\(sweep.deadLettersTrimmed)", "consumers_removed": "\(sweep.consumersRemoved)",
                    "cancel_marks_removed": "\(sweep.cancelMarksRemoved)",
                ])
            }
            return nil
        }.run()
    }

    public func sweepOnce() async throws -> Sweep {
        var sweep = Sweep()
        for queue in queues {
            let trimmed = try await trimDeadLetters(queue)
            var removed = 0
            for stream in keys.readyStreams(queue) { removed += try await removeIdleConsumers(stream: stream, group: RedisKeys.agentsGroup) }
            removed += try await removeIdleConsumers(stream: keys.events(queue), group: RedisKeys.recordersGroup)
            let unmarked = try await removeStaleCancelMarks(queue)
            Counter(label: MetricsCatalog.deadLettersTrimmed.name, dimensions: [("queue", queue)]).increment(by: trimmed)
            Counter(label: MetricsCatalog.consumersRemoved.name, dimensions: [("queue", queue)]).increment(by: removed)
            Counter(label: MetricsCatalog.cancelMarksRemoved.name, dimensions: [("queue", queue)]).increment(by: unmarked)
            sweep.deadLettersTrimmed += trimmed
            sweep.consumersRemoved += removed
            sweep.cancelMarksRemoved += unmarked
        }
        return sweep
    }

    private func trimDeadLetters(_ queue: String) async throws -> Int {
        var total = 0
        while true {
            let reply = try await redis.evaluate(Scripts.trimDeadLetters, [
                ScriptCall(keys: [keys.dead(queue), keys.deadIndex(queue)], arguments: [String(deadLetterLimit), String(Self.trimPage)])
            ])[0]
            guard let count = reply.integer else { throw RedisError(.commandFailed, reply.errorMessage ?? "no count", command: "EVALSHA trim_dead_letters") }
            total += Int(count)
            if count < Self.trimPage { return total }
        }
    }

    private func removeIdleConsumers(stream: String, group: String) async throws -> Int {
        let reply = try await redis.send(RedisCommand("XINFO", ["CONSUMERS", stream, group]))
        // No stream or no group yet: nothing to tidy.
        if reply.errorMessage != nil { return 0 }
        let idleMillis = idleConsumerAfter.milliseconds
        let candidates = (reply.array ?? []).compactMap { info -> String? in
            let fields = info.array ?? []
            var name: String?
            var pending: Int64?
            var idle: Int64?
            for index in stride(from: 0, to: fields.count - 1, by: 2) {
                switch fields[index].string {
                case "name": name = fields[index + 1].string
                case "pending": pending = fields[index + 1].integer
                case "idle": idle = fields[index + 1].integer
                default: break
                }
            }
            guard let name, pending == 0, let idle, idle >= idleMillis else { return nil }
            return name
        }
        guard !candidates.isEmpty else { return 0 }
        let replies = try await redis.evaluate(Scripts.removeIdleConsumer, candidates.map {
            ScriptCall(keys: [stream], arguments: [group, $0, String(idleMillis)])
        })
        return replies.reduce(0) { $0 + Int($1.integer ?? 0) }
    }

    /// Ids read from the cancelled set before a census of the queue and absent from it belong to tasks
    /// that left Redis: no agent will see them again. Only when the set is not empty (a census reads
    /// every stream of the queue).
    private func removeStaleCancelMarks(_ queue: String) async throws -> Int {
        guard let size = try await redis.send(RedisCommand("SCARD", [keys.cancelled(queue)])).integer, size > 0 else {
            unheld.withLock { $0[queue] = nil }
            return 0
        }
        let census = RedisCensus(redis: redis, keys: keys)
        let marked = try await census.cancelledIDs(in: queue)
        let held = try await census.taskIDs(in: queue)
        let missing = marked.subtracting(held)
        let stale = unheld.withLock { unheld in
            let twice = missing.intersection(unheld[queue] ?? [])
            unheld[queue] = missing
            return twice
        }.map(\.description)
        guard !stale.isEmpty else { return 0 }
        var removed = 0
        for start in stride(from: 0, to: stale.count, by: Self.trimPage) {
            let page = Array(stale[start..<min(start + Self.trimPage, stale.count)])
            removed += Int(try await redis.send(RedisCommand("SREM", [keys.cancelled(queue)] + page)).integer ?? 0)
        }
        return removed
    }
}
