/// When the Recorder reads its next batch.
///
/// Every batch costs a transaction whatever its size: four round trips, each a wake-up of a connection's
/// thread and of its backend, and a WAL flush at the COMMIT. At a light load a read finds a handful of
/// events, so the broker paid that for every few tasks. After a read that did not fill its batch the
/// Recorder waits until `duration` has passed since that read returned, and the next read takes what
/// arrived meanwhile: at most one transaction per `duration` however light the load. A read that filled
/// its batch is followed at once, so a backlog never waits; nor does the first event after a quiet spell.
/// The price is visibility: a status (and what follows it: a workflow's next node, a webhook, a wait
/// answered) reaches PostgreSQL up to `duration` later. Like River's batch completer, which trades a few
/// milliseconds for fewer transactions the same way.
struct RecorderLinger: Sendable, Equatable {
    let duration: Duration

    /// How long to wait before the next read, given when the last one returned and whether it filled
    /// its batch; nil to read at once.
    func pause(afterReadAt readAt: ContinuousClock.Instant, filled: Bool, now: ContinuousClock.Instant) -> Duration? {
        guard !filled, duration > .zero else { return nil }
        let left = readAt.advanced(by: duration) - now
        return left > .zero ? left : nil
    }
}
