import ConveyorCore
import ConveyorObservability
import ConveyorRedis
import Logging
import ServiceLifecycle

/// Stops tasks cancelled through the API while this agent holds them: checks the held tasks against
/// their queues' cancelled sets (one SMISMEMBER per queue) and tells the Executor to stop the matches.
///
/// Wakes every `interval` while the agent holds work. Graceful shutdown: stops.
final class CancelWatcher: Service, Sendable {
    private let redis: any RedisClient
    private let keys: RedisKeys
    private let executor: Executor
    private let interval: Duration
    private let clock: any Clock<Duration>
    private let logger: Logger

    init(
        redis: any RedisClient, keys: RedisKeys, executor: Executor, interval: Duration = .milliseconds(500),
        clock: any Clock<Duration> = ContinuousClock(), logger: Logger
    ) {
        self.redis = redis
        self.keys = keys
        self.executor = executor
        self.interval = interval
        self.clock = clock
        self.logger = logger
    }

    func run() async throws {
        await PeriodicService(name: "checking for cancelled tasks", interval: interval, clock: clock, logger: logger) { _ in
            try await self.checkOnce()
            return nil
        }.run()
    }

    func checkOnce() async throws {
        let held = executor.heldDeliveries
        guard !held.isEmpty else { return }
        let cancelled = try await FlowGate.inspect(held, redis: redis, keys: keys).cancelled
        if !cancelled.isEmpty { executor.cancel(entries: cancelled) }
    }
}
