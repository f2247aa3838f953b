import ConveyorCore

/// One task handed to this agent by XREADGROUP: the envelope plus where it came from, needed to
/// acknowledge it.
public struct Delivery: Sendable, Hashable {
    public var queue: String
    public var stream: String
    /// The ready-stream entry id.
    public var entryID: String
    public var envelope: TaskEnvelope
    /// The task was cancelled before this agent started it: it is acknowledged without running.
    public var cancelled: Bool = false
}

/// How an attempt ended.
enum AttemptOutcome: Sendable, Hashable {
    /// `result` is compact JSON text, or nil.
    case succeeded(result: String?)
    case failed(error: String, retryable: Bool)
    /// Stopped (or never started) because the task was cancelled through the API.
    case cancelled
}
