import DequeModule
import Synchronization

/// Adaptive batching between many producers and one consumer (group commit).
///
/// A lone item is handed to an idle consumer at once, with no timer. While the consumer is busy flushing
/// one batch, new items pile up; its next call takes all of them (up to `maximumWeight`). So batches are
/// small when load is light and grow with load, and latency never includes a fixed sleep.
///
/// Items keep their identity: an item is never split, so a group of tasks submitted together is
/// committed in one transaction. The queue is bounded: producers wait while it holds `capacity` weight,
/// so memory cannot grow without bound when the consumer is slower than the producers.
///
/// Every submission and every agent outcome passes through here, so the hot members are `@inlinable`:
/// the modules that use the queue get them specialised for their item type instead of running generic
/// code that looks up type metadata per call. The continuations are unsafe (unchecked) for the same
/// reason: each is taken out of the state under the lock by exactly one party before it is resumed, and
/// the checked kind costs an allocation each.
public final class GroupCommitQueue<Item: Sendable>: Sendable {
    @usableFromInline
    struct Entry {
        @usableFromInline var item: Item
        @usableFromInline var weight: Int

        @inlinable init(item: Item, weight: Int) {
            self.item = item
            self.weight = weight
        }
    }

    @usableFromInline
    struct State {
        @usableFromInline var entries: Deque<Entry> = []
        @usableFromInline var weight = 0
        @usableFromInline var consumer: UnsafeContinuation<Void, Never>?
        @usableFromInline var producers: Deque<UnsafeContinuation<Void, Never>> = []
        @usableFromInline var finished = false
        /// A consumer lingering between batches (``waitForUrgency(orWeight:)``), and the weight that
        /// ends its linger early.
        @usableFromInline var lingerer: UnsafeContinuation<Void, Never>?
        @usableFromInline var lingerEndsAtWeight = Int.max
        /// An urgent item came since the last batch was taken: a linger must not start.
        @usableFromInline var urgentWaiting = false

        @usableFromInline init() {}
    }

    @usableFromInline
    enum EnqueueStep {
        /// Added; the consumer waiting for an item, and a lingering one to wake, if any.
        case added(UnsafeContinuation<Void, Never>?, lingerer: UnsafeContinuation<Void, Never>?)
        case wait
        case finished
    }

    @usableFromInline let state = Mutex(State())
    @usableFromInline let capacity: Int

    /// - Parameter capacity: the total weight held before producers wait.
    public init(capacity: Int) {
        precondition(capacity > 0, "capacity must be positive")
        self.capacity = capacity
    }

    /// Adds an item. Suspends while the queue is full; throws ``GroupCommitQueueError/finished`` once the
    /// consumer has stopped. An `urgent` item ends a consumer's linger (``waitForUrgency(orWeight:)``) at
    /// once: something waits on its flush.
    @inlinable
    public func enqueue(_ item: Item, weight: Int = 1, urgent: Bool = false) async throws(GroupCommitQueueError) {
        while true {
            switch offer(item, weight: weight, behindWaiters: false, urgent: urgent) {
            case .finished:
                throw .finished
            case .added(let consumer, let lingerer):
                consumer?.resume()
                lingerer?.resume()
                return
            case .wait:
                await withUnsafeContinuation { continuation in
                    let resumeNow = state.withLock { state -> Bool in
                        if state.finished || state.weight + weight <= capacity || state.weight == 0 { return true }
                        state.producers.append(continuation)
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            }
        }
    }

    /// Adds an item if the queue has room for it now, and returns whether it did: the caller sheds the
    /// item instead of waiting (admission control, where ``enqueue(_:weight:)`` gives back-pressure).
    /// Producers already waiting in ``enqueue(_:weight:)`` go first: room a batch frees is theirs, so
    /// a stream of shedding callers cannot starve them. Throws ``GroupCommitQueueError/finished`` once
    /// the consumer has stopped.
    @inlinable
    public func tryEnqueue(_ item: Item, weight: Int = 1) throws(GroupCommitQueueError) -> Bool {
        switch offer(item, weight: weight, behindWaiters: true, urgent: false) {
        case .finished:
            throw .finished
        case .added(let consumer, let lingerer):
            consumer?.resume()
            lingerer?.resume()
            return true
        case .wait:
            return false
        }
    }

    /// Appends the item unless the queue is finished or too full for it (or, `behindWaiters`, while
    /// producers wait for room); an item heavier than the capacity is still admitted into an empty queue.
    @inlinable
    func offer(_ item: Item, weight: Int, behindWaiters: Bool, urgent: Bool) -> EnqueueStep {
        state.withLock { state -> EnqueueStep in
            if state.finished { return .finished }
            if behindWaiters, !state.producers.isEmpty { return .wait }
            if state.weight > 0, state.weight + weight > capacity { return .wait }
            state.entries.append(Entry(item: item, weight: weight))
            state.weight += weight
            if urgent { state.urgentWaiting = true }
            let consumer = state.consumer
            state.consumer = nil
            var lingerer: UnsafeContinuation<Void, Never>?
            if state.lingerer != nil, urgent || state.weight >= state.lingerEndsAtWeight {
                lingerer = state.lingerer
                state.lingerer = nil
            }
            return .added(consumer, lingerer: lingerer)
        }
    }

    /// Returns once an urgent item is waiting, the queue holds `weight` (a full batch), the queue is
    /// finished, or the calling task is cancelled: what ends a consumer's linger early. One consumer only.
    @inlinable
    public func waitForUrgency(orWeight weight: Int) async {
        await withTaskCancellationHandler {
            await withUnsafeContinuation { continuation in
                let now = state.withLock { state -> Bool in
                    if state.finished || state.urgentWaiting || state.weight >= weight || Task.isCancelled { return true }
                    state.lingerer = continuation
                    state.lingerEndsAtWeight = weight
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let lingerer = state.withLock { state in
                defer { state.lingerer = nil }
                return state.lingerer
            }
            lingerer?.resume()
        }
    }

    /// Whether an item of `weight` offered to ``tryEnqueue(_:weight:)`` now would be refused.
    @inlinable
    public func isFull(forWeight weight: Int = 1) -> Bool {
        state.withLock { !$0.producers.isEmpty || ($0.weight > 0 && $0.weight + weight > capacity) }
    }

    /// Takes every waiting item up to `maximumWeight` (at least one item), waiting for the first one.
    /// Returns nil once the queue is finished and empty, or when the calling task is cancelled while
    /// nothing is waiting. One consumer only: a second caller waiting at the same time would replace
    /// the first one's continuation.
    @inlinable
    public func nextBatch(maximumWeight: Int) async -> [Item]? {
        while true {
            if let batch = takeBatch(maximumWeight: maximumWeight) { return batch }
            if state.withLock({ $0.finished }) || Task.isCancelled { return nil }
            await withTaskCancellationHandler {
                await withUnsafeContinuation { continuation in
                    // Checking cancellation under the lock, after the check above: a cancel that came
                    // in between would otherwise find no continuation to resume.
                    let resumeNow = state.withLock { state -> Bool in
                        if !state.entries.isEmpty || state.finished || Task.isCancelled { return true }
                        state.consumer = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } onCancel: {
                let consumer = state.withLock { state in
                    defer { state.consumer = nil }
                    return state.consumer
                }
                consumer?.resume()
            }
            if Task.isCancelled, let batch = takeBatch(maximumWeight: maximumWeight) { return batch }
            if Task.isCancelled { return nil }
        }
    }

    /// Stops accepting items; items already queued can still be taken with ``nextBatch(maximumWeight:)``.
    public func finish() {
        let (consumer, lingerer, producers) = state.withLock { state in
            state.finished = true
            defer {
                state.consumer = nil
                state.lingerer = nil
                state.producers.removeAll()
            }
            return (state.consumer, state.lingerer, state.producers)
        }
        consumer?.resume()
        lingerer?.resume()
        for producer in producers { producer.resume() }
    }

    /// The weight waiting to be taken.
    public var pendingWeight: Int { state.withLock { $0.weight } }

    @inlinable
    func takeBatch(maximumWeight: Int) -> [Item]? {
        let (batch, producers) = state.withLock { state -> ([Item]?, Deque<UnsafeContinuation<Void, Never>>) in
            guard !state.entries.isEmpty else { return (nil, []) }
            var batch: [Item] = []
            batch.reserveCapacity(min(state.entries.count, maximumWeight))
            var taken = 0
            // Each entry is moved out of the queue into the batch: reading `first` and then removing it
            // copied every item (a completion holds a dozen references, each retained and released again).
            while !state.entries.isEmpty, batch.isEmpty || taken + state.entries[state.entries.startIndex].weight <= maximumWeight {
                let entry = state.entries.removeFirst()
                taken += entry.weight
                batch.append(entry.item)
            }
            state.weight -= taken
            state.urgentWaiting = false
            let producers = state.producers
            state.producers.removeAll()
            return (batch, producers)
        }
        for producer in producers { producer.resume() }
        return batch
    }
}

public enum GroupCommitQueueError: Error, Sendable, Hashable {
    /// The consumer has shut down; nothing more is accepted.
    case finished
}
