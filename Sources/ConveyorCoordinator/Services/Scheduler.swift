import ConveyorCore
import ConveyorObservability
import ConveyorPostgres
import Logging
import ServiceLifecycle

/// Enqueues the tasks of periodic schedules (the registry's `schedules:`), one per tick.
///
/// Every coordinator runs it; none leads. Each tick's task is submitted through the ordinary Submitter
/// with the idempotency key `schedule:<name>:<tick ms>`, so coordinators that submit the same tick
/// create one task, and a coordinator that crashed between submitting a tick and recording it submits
/// it again harmlessly. The last tick enqueued is kept in `conveyor_schedules`, so a restart carries on
/// where the schedule was.
///
/// Ticks are judged against wall-clock time. A tick at most ``lateWindow`` old is late, not missed, and
/// is always enqueued. Older ticks fell while no coordinator ran, and the schedule's `missed` policy
/// decides: `latest` (the default) enqueues the newest of them once when no recent tick is enqueued,
/// `skip` none, `all` every one (at most ``ScheduleDefinition/maxCatchUp`` per pass, oldest first). A
/// schedule seen for the first time starts from now: it does not run ticks from before it existed.
///
/// Sleeps until the next tick of any schedule (at most ``maximumWait``). Graceful shutdown: stops
/// after the current pass.
public final class Scheduler: Service, Sendable {
    private let schedules: [ScheduleDefinition]
    private let registry: TaskTypeRegistry
    private let store: ScheduleStore
    private let submit: @Sendable ([NewTask]) async throws -> [InsertedTask]
    private let now: @Sendable () -> Int64
    private let clock: any Clock<Duration>
    private let logger: Logger
    /// Fired after every pass (tests wait on it).
    public let passes = TestSignal<PeriodicService.PassOutcome>()

    /// How late a tick may be and still count as due rather than missed.
    public static let lateWindow = Duration.seconds(60)
    public static let maximumWait = Duration.seconds(10)

    /// - Parameters:
    ///   - submit: the Submitter's submit (a closure, so tests can watch what is submitted).
    ///   - now: wall-clock time in Unix ms (tests move it together with `clock`).
    public init(
        registry: TaskTypeRegistry, store: ScheduleStore, submit: @escaping @Sendable ([NewTask]) async throws -> [InsertedTask],
        now: @escaping @Sendable () -> Int64 = WallClock.nowMillis, clock: any Clock<Duration> = ContinuousClock(), logger: Logger
    ) {
        self.schedules = registry.schedules
        self.registry = registry
        self.store = store
        self.submit = submit
        self.now = now
        self.clock = clock
        self.logger = logger
    }

    public func run() async throws {
        guard !schedules.isEmpty else {
            // Returning early would end the whole service group: idle until shutdown instead.
            try? await gracefulShutdown()
            return
        }
        await PeriodicService(
            name: "scheduling periodic tasks", interval: Self.maximumWait, clock: clock, logger: logger, passes: passes
        ) { _ in try await self.tickOnce() }.run()
    }

    /// One pass over every schedule; returns the wait until the next tick.
    func tickOnce() async throws -> Duration {
        let now = self.now()
        let lastTicks = try await store.lastTicks()
        for schedule in schedules {
            guard let last = lastTicks[schedule.name] else {
                // New: start from now (ticks from before the schedule existed are not "missed").
                try await store.advance(schedule.name, to: now)
                continue
            }
            let ticks = Self.dueTicks(schedule, last: last, now: now)
            guard let newest = ticks.last else { continue }
            try await enqueue(schedule, ticks: ticks, now: now)
            try await store.advance(schedule.name, to: newest)
        }
        let after = self.now()
        let next = schedules.compactMap { $0.cron.next(after: after) }.min()
        guard let next else { return Self.maximumWait }
        return min(Self.maximumWait, .milliseconds(max(0, next - after)))
    }

    /// The ticks a pass at `now` enqueues for a schedule whose last enqueued tick is `last`, oldest first.
    static func dueTicks(_ schedule: ScheduleDefinition, last: Int64, now: Int64) -> [Int64] {
        let cron = schedule.cron
        let windowStart = now - lateWindow.milliseconds
        let recent = cron.ticks(after: max(last, windowStart), through: now, limit: ScheduleDefinition.maxCatchUp)
        guard last < windowStart else { return recent }
        switch schedule.missedTicks {
        case .skip:
            return recent
        case .latest:
            guard recent.isEmpty, let missed = cron.latest(atOrBefore: windowStart, after: last) else { return recent }
            return [missed]
        case .all:
            let missed = cron.ticks(after: last, through: windowStart, limit: ScheduleDefinition.maxCatchUp)
            // More than fit in one pass: the rest go in the next passes (the last tick only moves this far).
            if missed.count == ScheduleDefinition.maxCatchUp { return missed }
            return missed + recent
        }
    }

    private func enqueue(_ schedule: ScheduleDefinition, ticks: [Int64], now: Int64) async throws {
        guard let definition = registry[schedule.type] else { return }
        var tags = "{\"schedule\":"
        JSONValue.writeString(schedule.name, into: &tags)
        tags += "}"
        let tasks = ticks.map { tick in
            NewTask(
                type: definition.name, queue: schedule.queue ?? definition.queue, params: schedule.params,
                correlationID: CorrelationID.timeOrdered(), idempotencyKey: schedule.idempotencyKey(tickMillis: tick),
                maxAttempts: definition.maxAttempts, createdAtMillis: now, tags: tags, callbackURL: definition.callbackURL)
        }
        let inserted = try await submit(tasks)
        for (tick, task) in zip(ticks, inserted) where task.created {
            logger.info("enqueued a scheduled tick", metadata: [
                "schedule": "\(schedule.name)", "tick": "\(UTCTime.format(millis: tick))", LogKeys.taskID: "\(task.id)",
            ])
        }
    }
}
