import ConveyorCore

/// One task handed to this agent by XREADGROUP: the envelope plus where it came from, needed to
/// acknowledge it.
public struct Delivery: Sendable, Hashable {
    public var queue: String
    public var stream: String
    /// The ready-stream entry id.
    public var entryID: String
    public var envelope: TaskEnvelope
    /// Names the delivery within the agent: entry ids are unique per stream only, and a queue has a
    /// stream per priority (and an agent may serve several queues). A pair, not one joined string: it is
    /// hashed several times per task, and joining would allocate each time.
    public var key: Key { Key(stream: stream, entryID: entryID) }

    public struct Key: Hashable, Sendable {
        public var stream: String
        public var entryID: String

        /// The entry id alone: entries of different streams almost never share one (it is a time and a
        /// sequence), equality still compares both, and the agent hashes a key three times per task.
        public func hash(into hasher: inout Hasher) {
            hasher.combine(entryID)
        }
    }

    /// The key as text, for the progress book (its throttle is keyed by text; only tasks that report
    /// progress pay for it).
    var keyText: String { stream + " " + entryID }

    /// The task was cancelled before this agent started it: it is acknowledged without running.
    public var cancelled: Bool = false
    /// Its type has a per-agent limit as well as cluster-wide ones: the Executor asks the ``FlowGate``
    /// once the agent's own slot for the type is free, so it never holds a cluster slot it cannot use.
    var admitOnStart = false
    /// Taken over from another agent or from this agent's previous run: the attempt started before.
    var reclaimed = false

    /// When the entry was added to the ready stream (Unix ms, from its id): the attempt's dispatch.
    /// Read digit by digit: every event of a task asks, and splitting the id allocated an array each time.
    public var dispatchedAtMillis: Int64? {
        var millis: Int64 = 0
        var digits = 0
        for byte in entryID.utf8 {
            if byte == UInt8(ascii: "-") { break }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), digits < 18 else { return nil }
            millis = millis * 10 + Int64(byte - UInt8(ascii: "0"))
            digits += 1
        }
        return digits > 0 ? millis : nil
    }
}

/// How an attempt ended.
enum AttemptOutcome: Sendable, Hashable {
    /// `result` is compact JSON text, or nil.
    case succeeded(result: String?)
    /// `retryAfter`: the least wait before the next attempt the handler asked for (an HTTP worker's
    /// `Retry-After`), or nil for the type's backoff alone.
    case failed(error: String, retryable: Bool, retryAfter: Duration? = nil)
    /// The attempt ran past its type's `timeout` and was stopped: a retryable failure, counted apart.
    case timedOut(after: Duration)
    /// Stopped (or never started) because the task was cancelled through the API.
    case cancelled

    /// What a failed or timed-out attempt reports: its error text, and whether it may be retried.
    var failure: (error: String, retryable: Bool)? {
        switch self {
        case .failed(let error, let retryable, _): (error, retryable)
        case .timedOut(let after): ("timed out after \(after)", true)
        case .succeeded, .cancelled: nil
        }
    }

    /// The least wait before the next attempt the handler asked for.
    var retryAfter: Duration? {
        if case .failed(_, _, let retryAfter) = self { return retryAfter }
        return nil
    }
}
