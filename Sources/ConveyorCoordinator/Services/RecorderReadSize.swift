/// How many entries the Recorder asks for per stream, so that a read brings about its batch of events
/// although one entry may hold one event or a whole agent batch of them (``LifecycleEvent/batchField``).
///
/// Sized by the largest entry seen lately, not the average: a read of a backlog must stay near the
/// batch however its entries are mixed. Unknown at first (the worst is assumed: one entry per read),
/// and forgotten by halves, so the count follows smaller entries within a few reads.
struct RecorderReadSize: Sendable, Hashable {
    /// Events wanted per read and stream (`CONVEYOR_RECORDER_BATCH`).
    let events: Int
    /// Events in the largest entry seen lately.
    private(set) var largestEntry: Int

    init(events: Int) {
        self.events = max(1, events)
        largestEntry = self.events
    }

    /// The COUNT of the next read.
    var entries: Int { max(1, events / largestEntry) }

    /// Takes in a read whose largest entry held `events` events (nothing when it read none).
    mutating func observe(largestEntry seen: Int) {
        guard seen > 0 else { return }
        largestEntry = max(seen, largestEntry / 2, 1)
    }
}
