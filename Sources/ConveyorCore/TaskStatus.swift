/// The lifecycle state of a task, as recorded in PostgreSQL.
///
/// `(scheduled | waiting →) queued → running → succeeded | failed | retrying → … | dead | cancelled`, and
/// `waiting → skipped | failed` for a workflow node whose dependencies did not succeed.
/// The recorded state only ever moves forward: ``progress(attempt:)`` orders states so that a late or
/// replayed event can never overwrite a newer one (a late `running` never undoes `succeeded`).
public enum TaskStatus: String, Sendable, Hashable, Codable, CaseIterable {
    /// Submitted with a `delay` or `run_at`: parked in the queue's delayed set until it is due.
    case scheduled
    /// A workflow node whose dependencies have not all ended: it has no stream entry yet.
    case waiting
    case queued
    case running
    case succeeded
    case failed
    case retrying
    case dead
    case cancelled
    /// A workflow node that ended without running: a dependency did not succeed and its policy is `skip`.
    case skipped

    /// Whether no further event can change the task.
    public var isTerminal: Bool {
        switch self {
        case .succeeded, .failed, .dead, .cancelled, .skipped: true
        case .scheduled, .waiting, .queued, .running, .retrying: false
        }
    }

    /// A total order over (status, attempt): terminal states beat everything, then later attempts beat
    /// earlier ones, then within one attempt `waiting < scheduled < queued < running < retrying`.
    ///
    /// The same formula lives in SQL as `conveyor_progress(status, attempt)` (migration 1, `scheduled` added
    /// by migration 6, `waiting` and `skipped` by migration 8); the Recorder's
    /// merge relies on both agreeing, which a unit test checks.
    public func progress(attempt: Int) -> Int64 {
        switch self {
        case .succeeded, .failed, .dead, .cancelled, .skipped:
            return Self.terminalProgress
        case .waiting:
            return Int64(attempt) * 10 - 2
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
