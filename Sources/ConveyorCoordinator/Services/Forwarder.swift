import ConveyorCore
import ConveyorObservability
import ConveyorRedis
import Logging
import ServiceLifecycle
import Synchronization

/// Moves retries whose backoff has passed, and scheduled tasks whose time has come, from each queue's
/// delayed set to its ready stream, with the ``Scripts/forwardDue`` script (atomic, so several
/// coordinators may run it at once).
///
/// Wakes when the earliest entry is due (the script reports how long until then), at least every
/// `maximumWait`, at once again while it still finds full batches, and when this coordinator's
/// Submitter parks a task due before the planned wake (``nudge(dueAtMillis:)``). A task submitted
/// through another coordinator is therefore released within `maximumWait` of its time. Graceful
/// shutdown: stops after the current script.
public final class Forwarder: Service, Sendable {
    private let redis: any RedisClient
    private let keys: RedisKeys
    private let queues: [String]
    private let batchSize: Int
    private let maximumWait: Duration
    private let clock: any Clock<Duration>
    private let logger: Logger
    /// Fired after every pass (tests wait on it).
    public let passes = TestSignal<PeriodicService.PassOutcome>()
    private let wakeup = Wakeup()
    /// When the next pass is planned, Unix ms (0: a pass is running or about to).
    private let plannedWakeMillis = Mutex<Int64>(0)

    static let backoff = Backoff(base: .milliseconds(100), maximum: .seconds(5))

    public init(
        redis: any RedisClient, keys: RedisKeys, queues: [String], batchSize: Int = 1000, maximumWait: Duration = .seconds(1),
        clock: any Clock<Duration> = ContinuousClock(), logger: Logger
    ) {
        self.redis = redis
        self.keys = keys
        self.queues = queues
        self.batchSize = batchSize
        self.maximumWait = maximumWait
        self.clock = clock
        self.logger = logger
    }

    public func run() async throws {
        await PeriodicService(
            name: "forwarding due retries", interval: maximumWait, failureBackoff: Self.backoff, clock: clock, logger: logger,
            passes: passes, wakeup: wakeup
        ) { _ in
            self.plannedWakeMillis.withLock { $0 = 0 }
            let wait = try await self.forwardOnce()
            self.plannedWakeMillis.withLock { $0 = WallClock.nowMillis() + wait.milliseconds }
            return wait
        }.run()
    }

    /// A task due at `dueAtMillis` was parked: wake early if that is before the planned pass, or if a
    /// pass is running (its script may have looked before the task was parked).
    public func nudge(dueAtMillis: Int64) {
        let early = plannedWakeMillis.withLock { planned in
            guard planned == 0 || planned > dueAtMillis else { return false }
            planned = 0
            return true
        }
        if early { wakeup.signal() }
    }

    /// Runs the script once per queue (one pipeline) and returns how long to sleep.
    func forwardOnce() async throws -> Duration {
        let calls = queues.map { ScriptCall(keys: [keys.delayed($0), keys.ready($0), keys.events($0), keys.ready($0, priority: .low), keys.ready($0, priority: .high)], arguments: [String(batchSize)]) }
        let replies = try await redis.evaluate(Scripts.forwardDue, calls)
        var wait = maximumWait
        for (queue, reply) in zip(queues, replies) {
            if let message = reply.errorMessage { throw RedisError(.commandFailed, message, command: "EVALSHA forward_due") }
            guard let parts = reply.array, parts.count == 2, let moved = parts[0].integer, let next = parts[1].integer else {
                throw RedisError(.unexpectedReply, "expected {moved, wait}", command: "EVALSHA forward_due")
            }
            if moved > 0 { logger.debug("forwarded due retries", metadata: [LogKeys.queue: "\(queue)", LogKeys.count: "\(moved)"]) }
            if moved >= batchSize { return .zero }
            if next >= 0 { wait = min(wait, .milliseconds(next)) }
        }
        return wait
    }
}
