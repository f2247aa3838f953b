import ConveyorCore

/// One task handed to this agent by XREADGROUP: the envelope plus where it came from, needed to
/// acknowledge it.
public struct Delivery: Sendable, Hashable {
    public var queue: String
    public var stream: String
    /// The ready-stream entry id.
    public var entryID: String
    public var envelope: TaskEnvelope
}

/// How an attempt ended.
enum AttemptOutcome: Sendable, Hashable {
    /// `result` is compact JSON text, or nil.
    case succeeded(result: String?)
    case failed(error: String, retryable: Bool)
}
