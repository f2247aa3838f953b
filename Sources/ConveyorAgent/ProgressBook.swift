import ConveyorCore
import Synchronization

/// The progress reports of the attempts this agent runs, kept by a ``ProgressThrottle`` until the
/// ``ProgressFlusher`` sends them (about once a second per attempt) or the attempt ends (its last report
/// goes out just before its outcome).
///
/// Free for an attempt that never reports: the entry is made at the first report, and ending an attempt
/// looks at an atomic count before it takes the lock. A report that comes after its attempt ended (from
/// a task the handler left behind) is dropped at the next flush, so no entry outlives its attempt.
final class ProgressBook: Sendable {
    private struct State {
        var throttle = ProgressThrottle<String, ContinuousClock.Instant>()
        var deliveries: [String: Delivery] = [:]
        /// When the latest report was made (Unix ms): its time, whenever it is sent. Stamping it at the
        /// flush instead could date the attempt's last report after its outcome, which the Recorder
        /// then rightly refuses as a duplicate run's.
        var reportedAt: [String: Int64] = [:]
    }

    private let state = Mutex(State())
    /// Entries open: zero for an agent whose handlers never report.
    private let open = Atomic<Int>(0)

    var count: Int { open.load(ordering: .relaxed) }

    /// What a ``TaskContext`` reports through.
    struct Sink: Sendable {
        let book: ProgressBook
        let delivery: Delivery

        func report(_ progress: TaskProgress) { book.report(delivery, progress) }
    }

    func sink(for delivery: Delivery) -> Sink { Sink(book: self, delivery: delivery) }

    func report(_ delivery: Delivery, _ progress: TaskProgress) {
        state.withLock { state in
            if state.deliveries.updateValue(delivery, forKey: delivery.keyText) == nil { open.add(1, ordering: .relaxed) }
            state.throttle.report(delivery.keyText, progress)
            state.reportedAt[delivery.keyText] = WallClock.nowMillis()
        }
    }

    /// The reports due now, with their deliveries; entries of attempts no longer `running` are dropped.
    func due(now: ContinuousClock.Instant, running: (Delivery.Key) -> Bool) -> [(Delivery, TaskProgress, atMillis: Int64)] {
        guard count > 0 else { return [] }
        return state.withLock { state in
            for (entry, delivery) in state.deliveries where !running(delivery.key) {
                state.deliveries[entry] = nil
                state.reportedAt[entry] = nil
                _ = state.throttle.finish(entry)
                open.subtract(1, ordering: .relaxed)
            }
            return state.throttle.due(now: now).compactMap { entry, progress in
                state.deliveries[entry].map { ($0, progress, atMillis: state.reportedAt[entry] ?? WallClock.nowMillis()) }
            }
        }
    }

    /// Ends the attempt's entry; returns its report not sent yet.
    func finish(_ delivery: Delivery) -> (progress: TaskProgress, atMillis: Int64)? {
        guard count > 0 else { return nil }
        return state.withLock { state in
            guard state.deliveries.removeValue(forKey: delivery.keyText) != nil else { return nil }
            open.subtract(1, ordering: .relaxed)
            let at = state.reportedAt.removeValue(forKey: delivery.keyText) ?? WallClock.nowMillis()
            return state.throttle.finish(delivery.keyText).map { ($0, at) }
        }
    }
}
