import ConveyorCore
import Synchronization

/// The progress reports of the attempts this agent runs, kept by a ``ProgressThrottle`` until the
/// ``ProgressFlusher`` sends them (about once a second per attempt) or the attempt ends (its last report
/// goes out just before its outcome).
///
/// A report is taken only while its attempt runs: a handler that reports after it returned (from a task
/// it left behind) cannot leave an entry here forever.
final class ProgressBook: Sendable {
    private struct State {
        var throttle = ProgressThrottle<String, ContinuousClock.Instant>()
        var running: [String: Delivery] = [:]
    }

    private let state = Mutex(State())

    /// Attempts running with the book open.
    var count: Int { state.withLock { $0.running.count } }

    /// Opens the attempt's entry and returns what its ``TaskContext`` reports through.
    func begin(_ delivery: Delivery) -> @Sendable (TaskProgress) -> Void {
        let entry = delivery.entryID
        state.withLock { $0.running[entry] = delivery }
        return { [self] progress in
            state.withLock { state in
                guard state.running[entry] != nil else { return }
                state.throttle.report(entry, progress)
            }
        }
    }

    /// The reports due now, with their deliveries.
    func due(now: ContinuousClock.Instant) -> [(Delivery, TaskProgress)] {
        state.withLock { state in
            state.throttle.due(now: now).compactMap { entry, progress in
                state.running[entry].map { ($0, progress) }
            }
        }
    }

    /// Closes the attempt's entry; returns its report not sent yet.
    func finish(_ delivery: Delivery) -> TaskProgress? {
        state.withLock { state in
            state.running[delivery.entryID] = nil
            return state.throttle.finish(delivery.entryID)
        }
    }
}
