import Synchronization

/// A value that one side fulfils once and the other awaits: the reply slot of a queued request, so the
/// requester can await its answer without an unstructured task.
public final class Promise<Value: Sendable>: Sendable {
    private enum State {
        case pending([CheckedContinuation<Value, any Error>])
        case done(Result<Value, any Error>)
    }

    private let state = Mutex(State.pending([]))

    public init() {}

    /// Fulfils the promise; later calls are ignored.
    public func complete(_ result: Result<Value, any Error>) {
        let waiters = state.withLock { state -> [CheckedContinuation<Value, any Error>] in
            guard case .pending(let waiters) = state else { return [] }
            state = .done(result)
            return waiters
        }
        for waiter in waiters { waiter.resume(with: result) }
    }

    /// Whether the promise has been fulfilled, either way.
    public var isFulfilled: Bool {
        state.withLock { if case .done = $0 { return true } else { return false } }
    }

    /// Whether the promise has been fulfilled with a value.
    public var isSucceeded: Bool {
        state.withLock { if case .done(.success) = $0 { return true } else { return false } }
    }

    public func succeed(_ value: Value) { complete(.success(value)) }
    public func fail(_ error: any Error) { complete(.failure(error)) }

    public var value: Value {
        get async throws {
            try await withCheckedThrowingContinuation { continuation in
                let result = state.withLock { state -> Result<Value, any Error>? in
                    switch state {
                    case .done(let result): return result
                    case .pending(var waiters):
                        waiters.append(continuation)
                        state = .pending(waiters)
                        return nil
                    }
                }
                if let result { continuation.resume(with: result) }
            }
        }
    }
}
