/// How long a batching loop waits before it takes its next batch, after one that did not fill.
///
/// A batch costs a round trip whatever its size (a transaction for the Recorder, a script call for an
/// agent's Completer): a wake-up of a connection's thread, of the server, and a write to its log. At a
/// light load a batch finds one or a few items, so the broker paid that per item. After a batch that did
/// not fill, the loop waits until `duration` has passed since that batch was taken, and the next batch
/// takes what arrived meanwhile: at most one round trip per `duration` however light the load. A batch
/// that filled is followed at once, so a backlog never waits; nor does the first item after a quiet
/// spell (its linger has long passed). The price is visibility: what the batch reports arrives up to
/// `duration` later. River's batch completer trades a few milliseconds for fewer round trips the same way.
public struct Linger: Sendable, Hashable {
    public let duration: Duration

    public init(duration: Duration) {
        self.duration = duration
    }

    /// How long to wait before the next batch, given when the last one was taken and whether it filled;
    /// nil to take it at once.
    public func pause<Instant: InstantProtocol<Duration>>(afterBatchAt takenAt: Instant, filled: Bool, now: Instant) -> Duration? {
        guard !filled, duration > .zero else { return nil }
        let left = now.duration(to: takenAt.advanced(by: duration))
        return left > .zero ? left : nil
    }
}
