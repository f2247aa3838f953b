import Synchronization

/// A hook a service fires at a point tests care about ("a pass finished", "a batch was flushed").
///
/// Why: tests must wait for what a service did, not sleep for a guessed time (River's testsignal).
/// Nobody listens in production, and then ``signal(_:)`` costs one uncontended lock and never blocks.
/// A test calls ``values()`` before starting the service and iterates the stream.
public final class TestSignal<Value: Sendable>: Sendable {
    private let continuation = Mutex<AsyncStream<Value>.Continuation?>(nil)

    public init() {}

    /// Records `value` for a listener, if one is listening.
    public func signal(_ value: Value) {
        _ = continuation.withLock { $0 }?.yield(value)
    }

    /// Starts listening: every value signalled from now on, buffered until read.
    public func values() -> AsyncStream<Value> {
        let (stream, continuation) = AsyncStream<Value>.makeStream(bufferingPolicy: .unbounded)
        self.continuation.withLock { $0 = continuation }
        return stream
    }
}
