/// A periodic schedule from the registry's `schedules:`: every tick of its cron expression enqueues one
/// task of its type, through the ordinary submit path.
public struct ScheduleDefinition: Sendable, Hashable {
    public var name: String
    public var cron: CronSchedule
    public var type: String
    /// Compact JSON object text.
    public var params: String
    /// Nil: the type's queue.
    public var queue: String?
    public var missedTicks: MissedTicks

    /// What happens to ticks that fell while no coordinator was running.
    public enum MissedTicks: String, Sendable, Hashable, CaseIterable {
        /// Enqueue the latest missed tick once (the default): a nightly job missed for three nights
        /// runs once, not three times.
        case latest
        /// Enqueue none; carry on from the next tick.
        case skip
        /// Enqueue every missed tick, oldest first, at most ``ScheduleDefinition/maxCatchUp``.
        case all
    }

    /// The most missed ticks `all` enqueues at once.
    public static let maxCatchUp = 100

    public init(name: String, cron: CronSchedule, type: String, params: String = "{}", queue: String? = nil, missedTicks: MissedTicks = .latest) {
        self.name = name
        self.cron = cron
        self.type = type
        self.params = params
        self.queue = queue
        self.missedTicks = missedTicks
    }

    /// The idempotency key of the task of one tick: several coordinators submitting the same tick
    /// create one task.
    public func idempotencyKey(tickMillis: Int64) -> String { "schedule:\(name):\(tickMillis)" }
}
