import ConveyorCore
import ConveyorRedis
import Logging
import ServiceLifecycle
import Synchronization

/// Carries progress reported over HTTP (`POST /v1/tasks/{id}/progress`, for workers that are not
/// agents) onto the task's events stream, where the Recorder takes it like an agent's report.
///
/// Throttled like an agent: the latest report per task, sent every `interval` at most about once a
/// second per task, all due reports of a pass in one pipeline. A task not reported on for a minute
/// is forgotten. Graceful shutdown: stops; a report not sent yet is lost, like one a worker never made.
final class ProgressRelay: Service, Sendable {
    struct Target: Sendable, Hashable {
        var queue: String
        var type: String
        var attempt: Int
        var correlationID: String
        var reporter: String
    }

    private struct State {
        var throttle = ProgressThrottle<TaskID, ContinuousClock.Instant>()
        var targets: [TaskID: Target] = [:]
    }

    private let redis: any RedisClient
    private let keys: RedisKeys
    private let interval: Duration
    private let clock: any Clock<Duration>
    private let logger: Logger
    private let state = Mutex(State())

    static let forgetAfter = Duration.seconds(60)

    init(redis: any RedisClient, keys: RedisKeys, interval: Duration = .milliseconds(200), clock: any Clock<Duration> = ContinuousClock(), logger: Logger) {
        self.redis = redis
        self.keys = keys
        self.interval = interval
        self.clock = clock
        self.logger = logger
    }

    func report(_ id: TaskID, _ progress: TaskProgress, to target: Target) {
        state.withLock { state in
            state.targets[id] = target
            state.throttle.report(id, progress)
        }
    }

    func run() async throws {
        await PeriodicService(name: "relaying progress", interval: interval, clock: clock, logger: logger) { _ in
            try await self.sendDue(now: .now)
            return nil
        }.run()
    }

    func sendDue(now: ContinuousClock.Instant) async throws {
        let due = state.withLock { state -> [(TaskID, TaskProgress, Target)] in
            let due = state.throttle.due(now: now).compactMap { id, progress in state.targets[id].map { (id, progress, $0) } }
            for id in state.throttle.forgetIdle(now: now, idle: Self.forgetAfter) { state.targets[id] = nil }
            return due
        }
        guard !due.isEmpty else { return }
        let at = WallClock.nowMillis()
        let commands = due.map { id, progress, target in
            let event = LifecycleEvent(
                taskID: id, status: .running, attempt: target.attempt, agent: target.reporter, atMillis: at,
                correlationID: target.correlationID, type: target.type, progress: progress)
            return RedisCommand("XADD", [keys.events(target.queue), "*"] + event.compactFields.flatMap { [$0.0, $0.1] })
        }
        let replies = try await redis.send(commands)
        if let error = replies.compactMap(\.errorMessage).first {
            throw RedisError(.commandFailed, error, command: "XADD progress")
        }
    }
}
