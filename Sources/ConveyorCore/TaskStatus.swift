/// The lifecycle state of a task, as recorded in PostgreSQL.
///
/// `(scheduled →) queued → running → succeeded | failed | retrying → … | dead | cancelled`.
/// The recorded state only ever moves forward: ``progress(attempt:)`` orders states so that a late or
/// replayed event can never overwrite a newer one (a late `running` never undoes `succeeded`).
public enum TaskStatus: String, Sendable, Hashable, Codable, CaseIterable {
    /// Submitted with a `delay` or `run_at`: parked in the queue's delayed set until it is due.
    case scheduled
    case queued
    case running
    case succeeded
    case failed
    case retrying
    case dead
    case cancelled

    /// Whether no further event can change the task.
    public var isTerminal: Bool {
        switch self {
        case .succeeded, .failed, .dead, .cancelled: true
        case .scheduled, .queued, .running, .retrying: false
        }
    }

    /// A total order over (status, attempt): terminal states beat everything, then later attempts beat
    /// earlier ones, then within one attempt `scheduled < queued < running < retrying`.
    ///
    /// The same formula lives in SQL as `conveyor_progress(status, attempt)` (migration 1, `scheduled` added by migration 6); the Recorder's
    /// merge relies on both agreeing, which a unit test checks.
    public func progress(attempt: Int) -> Int64 {
        switch self {
        case .succeeded, .failed, .dead, .cancelled:
            return Self.terminalProgress
        case .scheduled:
            return Int64(attempt) * 10 - 1
        case .queued:
            return Int64(attempt) * 10
        case .running:
            return Int64(attempt) * 10 + 1
        case .retrying:
            return Int64(attempt) * 10 + 2
        }
    }

    /// The progress of every terminal status: above any reachable attempt number.
    public static let terminalProgress: Int64 = 1_000_000_000
}
