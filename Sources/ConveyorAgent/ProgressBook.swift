import ConveyorCore
import Synchronization

/// The progress reports of the attempts this agent runs, kept by a ``ProgressThrottle`` until the
/// ``ProgressFlusher`` sends them (about once a second per attempt) or the attempt ends (its last report
/// goes out just before its outcome).
///
/// Free for an attempt that never reports: the entry is made at the first report, and ending an attempt
/// looks at an atomic count before it takes the lock. A report that comes after its attempt ended (from
/// a task the handler left behind) is dropped: at once while the executor still holds the attempt, at the
/// next flush after that, so no entry outlives its attempt.
///
/// The book also dates an attempt's reports so that its events keep the order they happened in when
/// several fall in one millisecond: a task's history lists rows of the same millisecond by event id, in
/// which a report (`…-progress-<ms>`) sorts before `…-running` and after `…-failed`. So a report is
/// dated at least a millisecond after the attempt started, and the outcome at least a millisecond after
/// the last report (``Ending/outcomeNotBefore``).
final class ProgressBook: Sendable {
    private struct State {
        var throttle = ProgressThrottle<String, ContinuousClock.Instant>()
        var deliveries: [String: Delivery] = [:]
        /// When the latest report was made (Unix ms): its time, whenever it is sent. Stamping it at the
        /// flush instead could date the attempt's last report after its outcome, which the Recorder
        /// then rightly refuses as a duplicate run's.
        var reportedAt: [String: Int64] = [:]
        /// The earliest time the attempt's next report may carry: a millisecond after its `running`,
        /// then after the report last handed out (two reports of one millisecond would share an event id,
        /// and the second would be dropped as a duplicate).
        var earliest: [String: Int64] = [:]
        /// Attempts that reported and have ended, until they are no longer held: a report made in
        /// between (by work the handler left running) would be dated before the outcome or beside an
        /// earlier report, so it is dropped.
        var ended: [String: Delivery.Key] = [:]
    }

    private let state = Mutex(State())
    /// Entries open or ended and still held: zero for an agent whose handlers never report.
    private let open = Atomic<Int>(0)
    private let now: @Sendable () -> Int64

    /// - Parameter now: the wall clock in Unix ms (a fixed one in tests).
    init(now: @escaping @Sendable () -> Int64 = WallClock.nowMillis) {
        self.now = now
    }

    var count: Int { open.load(ordering: .relaxed) }

    /// What a ``TaskContext`` reports through.
    struct Sink: Sendable {
        let book: ProgressBook
        let delivery: Delivery
        let startedAtMillis: Int64

        func report(_ progress: TaskProgress) { book.report(delivery, progress, startedAtMillis: startedAtMillis) }
    }

    func sink(for delivery: Delivery, startedAtMillis: Int64) -> Sink {
        // A new run of an entry this agent ran before (its own lease taken back) reports afresh.
        if count > 0 {
            state.withLock { state in
                if state.ended.removeValue(forKey: delivery.keyText) != nil { open.subtract(1, ordering: .relaxed) }
            }
        }
        return Sink(book: self, delivery: delivery, startedAtMillis: startedAtMillis)
    }

    func report(_ delivery: Delivery, _ progress: TaskProgress, startedAtMillis: Int64) {
        let now = self.now()
        state.withLock { state in
            let entry = delivery.keyText
            guard state.ended[entry] == nil else { return }
            if state.deliveries.updateValue(delivery, forKey: entry) == nil { open.add(1, ordering: .relaxed) }
            state.throttle.report(entry, progress)
            state.reportedAt[entry] = max(now, state.earliest[entry] ?? startedAtMillis + 1)
        }
    }

    /// The reports due now, with their deliveries; entries of attempts no longer `running` are dropped.
    func due(now: ContinuousClock.Instant, running: (Delivery.Key) -> Bool) -> [(Delivery, TaskProgress, atMillis: Int64)] {
        guard count > 0 else { return [] }
        let wallNow = self.now()
        return state.withLock { state in
            for (entry, key) in state.ended where !running(key) {
                state.ended[entry] = nil
                open.subtract(1, ordering: .relaxed)
            }
            for (entry, delivery) in state.deliveries where !running(delivery.key) {
                state.deliveries[entry] = nil
                state.reportedAt[entry] = nil
                state.earliest[entry] = nil
                _ = state.throttle.finish(entry)
                open.subtract(1, ordering: .relaxed)
            }
            return state.throttle.due(now: now).compactMap { entry, progress in
                guard let delivery = state.deliveries[entry] else { return nil }
                let at = state.reportedAt[entry] ?? wallNow
                state.earliest[entry] = at + 1
                return (delivery, progress, atMillis: at)
            }
        }
    }

    /// How an attempt ends in the book: its report not sent yet, and the earliest time its outcome may
    /// carry (a millisecond after the last report it sent or will send).
    struct Ending {
        var unsent: (progress: TaskProgress, atMillis: Int64)?
        var outcomeNotBefore: Int64
    }

    /// Ends the attempt's entry; nil when it never reported.
    func finish(_ delivery: Delivery) -> Ending? {
        guard count > 0 else { return nil }
        return state.withLock { state in
            let entry = delivery.keyText
            guard state.deliveries.removeValue(forKey: entry) != nil else { return nil }
            // Still counted in `open`: the entry moves to `ended` until the attempt is no longer held.
            state.ended[entry] = delivery.key
            let reportedAt = state.reportedAt.removeValue(forKey: entry)
            let earliest = state.earliest.removeValue(forKey: entry)
            guard let unsent = state.throttle.finish(entry) else {
                return earliest.map { Ending(unsent: nil, outcomeNotBefore: $0) }
            }
            let at = reportedAt ?? earliest ?? now()
            return Ending(unsent: (unsent, at), outcomeNotBefore: at + 1)
        }
    }
}
