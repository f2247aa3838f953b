/// How many entries an agent reads beyond its free slots: as many as its tasks freed during the last read
/// round, while a stream has a backlog (Little's law: the slots that come free during one round trip).
///
/// An agent that reads only its free slots leaves every slot freed during the round trip idle until the
/// read returns. With fast tasks that idle time is most of each round, and an agent's throughput becomes its
/// slot count divided by the round's time, not what its CPU can do (measured with no-op tasks at the
/// ceiling: 64 slots per agent 16,300–17,100 tasks/s, 128 slots 22,300). So while the last read got all it
/// asked for (more is waiting), the next one also asks for the slots freed meanwhile, at most the agent's
/// concurrency. Those entries wait in hand, held like the rest (leases renewed, cancellable), and start in
/// the order read as slots free: by the estimate, within about a round trip.
///
/// Slow tasks free few slots during a round, so their agents read little or nothing ahead and do not
/// hold work that another agent could start; without a backlog there is nothing to read ahead.
struct ReadAhead: Sendable, Hashable {
    /// The most entries held beyond the free slots: the agent's concurrency.
    let limit: Int
    /// Entries the next read may take beyond the free slots.
    private(set) var allowance = 0

    init(limit: Int) {
        self.limit = max(0, limit)
    }

    /// Adjusts the allowance after a read round during which the agent's tasks freed `freedMeanwhile`
    /// slots; `backlog` says whether a stream's read got all it asked for (``ReadPlan/hasBusy(excluding:)``).
    mutating func roundEnded(backlog: Bool, freedMeanwhile: Int) {
        allowance = backlog ? min(limit, max(0, freedMeanwhile)) : 0
    }
}
