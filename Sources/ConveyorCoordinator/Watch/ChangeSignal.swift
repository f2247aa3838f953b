import Synchronization

/// "Something about this task changed": set by the hub, awaited by one live stream or wait. Signals
/// that arrive while nobody waits are kept as one, so a burst of changes costs one re-read.
final class ChangeSignal: Sendable {
    private struct State {
        var pending = false
        var stopped = false
        var waiter: CheckedContinuation<Bool, Never>?
    }

    private let state = Mutex(State())

    func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            guard let waiter = state.waiter else {
                state.pending = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume(returning: true)
    }

    /// Ends every wait, now and later: the server is shutting down.
    func stop() {
        state.withLock { $0.stopped = true }
        signal()
    }

    var isStopped: Bool { state.withLock { $0.stopped } }

    /// True when signalled (now or since the last wait), false when `timeout` passed first or the
    /// waiting task was cancelled.
    func wait(timeout: Duration) async -> Bool {
        if state.withLock({ state in defer { state.pending = false }; return state.pending || state.stopped }) { return true }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask { await self.next() }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            var signalled = await group.next() ?? false
            group.cancelAll()
            // The loser ends promptly (the sleep on cancellation, the wait through its handler); a signal
            // that resumed the wait just as the sleep won still counts.
            for await other in group { signalled = signalled || other }
            return signalled || state.withLock { state in defer { state.pending = false }; return state.pending }
        }
    }

    private func next() async -> Bool {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let resumeNow = state.withLock { state -> Bool? in
                    if state.pending {
                        state.pending = false
                        return true
                    }
                    if Task.isCancelled { return false }
                    state.waiter = continuation
                    return nil
                }
                if let resumeNow { continuation.resume(returning: resumeNow) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: false)
        }
    }
}
