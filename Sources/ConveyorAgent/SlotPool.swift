import DequeModule
import Synchronization

/// Counts free execution slots. The Consumer reads no more entries than there are free slots, plus the
/// ``ReadAhead`` allowance while a stream has a backlog (the lease clock starts at XREADGROUP, not when a
/// handler begins: DESIGN §2, pitfall 2); entries read ahead make `free` negative until they start.
final class SlotPool: Sendable {
    private struct State {
        var free: Int
        var readAhead = 0
        var released = 0
        var waiter: CheckedContinuation<Void, Never>?
        var room: Int { free + readAhead }
    }

    private let state: Mutex<State>
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        self.state = Mutex(State(free: capacity))
    }

    /// Slots not taken (negative while entries read ahead wait for one).
    var free: Int { state.withLock { $0.free } }

    /// Entries the agent may take now: the free slots plus the read-ahead allowance.
    var room: Int { state.withLock { $0.room } }

    /// Slots freed since the pool began: the Consumer counts those freed during a read round.
    var releasedCount: Int { state.withLock { $0.released } }

    /// Whether the Consumer waits for room now.
    var hasWaiter: Bool { state.withLock { $0.waiter != nil } }

    /// Sets how many entries the Consumer may take beyond the free slots (``ReadAhead/allowance``).
    func setReadAhead(_ allowance: Int) {
        state.withLock { $0.readAhead = max(0, allowance) }
    }

    /// Waits until the Consumer may take at least one entry and returns how many: the free slots plus the
    /// read-ahead allowance (only the Consumer calls this).
    func waitForRoom() async -> Int {
        while true {
            let room = state.withLock { $0.room }
            if room > 0 { return room }
            if Task.isCancelled { return 0 }
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let resumeNow = state.withLock { state -> Bool in
                        if state.room > 0 || Task.isCancelled { return true }
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
            state.released &+= count
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }
}

/// Limits how many tasks run at once, FIFO: all of an agent's (its concurrency), or one type's
/// (`max_concurrent_per_agent`).
final class RunLimiter: Sendable {
    private struct State {
        var available: Int
        var waiters: Deque<CheckedContinuation<Void, Never>> = []
    }

    private let state: Mutex<State>

    init(limit: Int) {
        state = Mutex(State(available: limit))
    }

    /// Acquires waiting for a release.
    var waiting: Int { state.withLock { $0.waiters.count } }

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

    /// Takes a slot if one is free and nobody waits for one, without suspending.
    func tryAcquire() -> Bool {
        state.withLock { state in
            guard state.available > 0, state.waiters.isEmpty else { return false }
            state.available -= 1
            return true
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
