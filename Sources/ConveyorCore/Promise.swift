import Synchronization

/// A value that one side fulfils once and the other awaits: the reply slot of a queued request, so the
/// requester can await its answer without an unstructured task.
///
/// Every submission awaits one, so the common case costs little: one waiter is held without an array,
/// the members are `@inlinable` (specialised for the value type where they are used), and the
/// continuations are unsafe (unchecked), since each is taken out of the state under the lock by exactly
/// one `complete` before it is resumed.
public final class Promise<Value: Sendable>: Sendable {
    @usableFromInline
    enum State {
        case pending
        case waiting(UnsafeContinuation<Value, any Error>)
        case waitingMany([UnsafeContinuation<Value, any Error>])
        case done(Result<Value, any Error>)
    }

    @usableFromInline let state = Mutex(State.pending)

    @inlinable public init() {}

    /// Fulfils the promise; later calls are ignored.
    @inlinable
    public func complete(_ result: Result<Value, any Error>) {
        let waiters = state.withLock { state -> State in
            if case .done = state { return .pending }
            defer { state = .done(result) }
            return state
        }
        switch waiters {
        case .waiting(let waiter): waiter.resume(with: result)
        case .waitingMany(let waiters): for waiter in waiters { waiter.resume(with: result) }
        case .pending, .done: break
        }
    }

    /// Whether the promise has been fulfilled, either way.
    public var isFulfilled: Bool {
        state.withLock { if case .done = $0 { return true } else { return false } }
    }

    /// Whether the promise has been fulfilled with a value.
    public var isSucceeded: Bool {
        state.withLock { if case .done(.success) = $0 { return true } else { return false } }
    }

    @inlinable public func succeed(_ value: Value) { complete(.success(value)) }
    @inlinable public func fail(_ error: any Error) { complete(.failure(error)) }

    @inlinable
    public var value: Value {
        get async throws {
            try await withUnsafeThrowingContinuation { continuation in
                let result = state.withLock { state -> Result<Value, any Error>? in
                    switch state {
                    case .done(let result): return result
                    case .pending: state = .waiting(continuation)
                    case .waiting(let first): state = .waitingMany([first, continuation])
                    case .waitingMany(var waiters):
                        state = .pending  // so that the append below does not copy the array
                        waiters.append(continuation)
                        state = .waitingMany(waiters)
                    }
                    return nil
                }
                if let result { continuation.resume(with: result) }
            }
        }
    }
}
