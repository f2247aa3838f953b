import DequeModule
import Synchronization

/// Counts free execution slots. The Consumer reads no more entries than there are free slots (the lease
/// clock starts at XREADGROUP, not when a handler begins: DESIGN §2, pitfall 2).
final class SlotPool: Sendable {
    private struct State {
        var free: Int
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state: Mutex<State>
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        self.state = Mutex(State(free: capacity))
    }

    var free: Int { state.withLock { $0.free } }

    /// Waits until at least one slot is free and returns how many are (only the Consumer calls this).
    func waitForFree() async -> Int {
        while true {
            let free = state.withLock { $0.free }
            if free > 0 { return free }
            if Task.isCancelled { return 0 }
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let resumeNow = state.withLock { state -> Bool in
                        if state.free > 0 || Task.isCancelled { return true }
                        state.waiter = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } onCancel: {
                let waiter = state.withLock { state in
                    defer { state.waiter = nil }
                    return state.waiter
                }
                waiter?.resume()
            }
        }
    }

    func take(_ count: Int) {
        state.withLock { $0.free -= count }
    }

    func release(_ count: Int = 1) {
        let waiter = state.withLock { state in
            state.free += count
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }
}

/// Limits how many tasks of one type run at once (the type's `max_concurrent`), FIFO.
final class TypeLimiter: Sendable {
    private struct State {
        var available: Int
        var waiters: Deque<CheckedContinuation<Void, Never>> = []
    }

    private let state: Mutex<State>

    init(limit: Int) {
        state = Mutex(State(available: limit))
    }

    func acquire() async {
        await withCheckedContinuation { continuation in
            let granted = state.withLock { state -> Bool in
                if state.available > 0 {
                    state.available -= 1
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if granted { continuation.resume() }
        }
    }

    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let next = state.waiters.popFirst() { return next }
            state.available += 1
            return nil
        }
        next?.resume()
    }
}
