import ConveyorCore
import ConveyorTesting
import ServiceLifecycleTestKit
import Synchronization
import Testing

@Suite("GroupCommitQueue with a linger: fewer flushes at a light load, no wait behind a backlog", .timeLimit(.minutes(1)))
struct GroupCommitQueueLingerTests {
    /// The batches a consumer flushed, in order, and a way to wait for the next ones.
    final class Flushes: Sendable {
        private struct State {
            var batches: [[Int]] = []
            var read = 0
            var waiter: (count: Int, continuation: CheckedContinuation<Void, Never>)?
        }

        private let state = Mutex(State())

        func record(_ batch: [Int]) {
            let ready = state.withLock { state -> CheckedContinuation<Void, Never>? in
                state.batches.append(batch)
                guard let waiter = state.waiter, state.batches.count >= waiter.count else { return nil }
                state.waiter = nil
                return waiter.continuation
            }
            ready?.resume()
        }

        var all: [[Int]] { state.withLock { $0.batches } }

        /// The next `count` batches not returned before, once they have been flushed.
        func next(_ count: Int = 1) async -> [[Int]] {
            let target = state.withLock { $0.read + count }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { state -> Bool in
                    if state.batches.count >= target { return true }
                    state.waiter = (target, continuation)
                    return false
                }
                if ready { continuation.resume() }
            }
            return state.withLock { state in
                defer { state.read = target }
                return Array(state.batches[state.read..<target])
            }
        }
    }

    let linger = Linger(duration: .milliseconds(10))

    @Test("the first item after a quiet spell is flushed at once; items that come during the linger wait for it and go together")
    func itemsDuringTheLingerShareAFlush() async throws {
        let queue = GroupCommitQueue<Int>(capacity: 100)
        let clock = MockClock()
        let flushes = Flushes()
        let consumer = Task { await queue.consume(maximumWeight: 10, linger: linger, clock: clock) { flushes.record($0) } }
        defer { consumer.cancel() }

        try await queue.enqueue(1)
        #expect(await flushes.next() == [[1]])
        await clock.waitForSleepers()
        #expect(clock.pendingWaits == [.milliseconds(10)])
        try await queue.enqueue(2)
        try await queue.enqueue(3)
        #expect(flushes.all == [[1]], "the consumer is asleep on the clock: nothing more was flushed")

        clock.advance(by: .milliseconds(10))
        #expect(await flushes.next() == [[2, 3]])
        // The linger after that batch passes with nothing queued: the next item goes at once.
        await clock.advanceToNextSleeper()
        try await queue.enqueue(4)
        #expect(await flushes.next() == [[4]])
    }

    @Test("a batch that leaves items behind is followed at once, without a pause")
    func backlogIsNotDelayed() async throws {
        let queue = GroupCommitQueue<Int>(capacity: 100)
        for value in 1...5 { try await queue.enqueue(value) }
        let clock = MockClock()
        let flushes = Flushes()
        let consumer = Task { await queue.consume(maximumWeight: 2, linger: linger, clock: clock) { flushes.record($0) } }
        defer { consumer.cancel() }

        #expect(await flushes.next(3) == [[1, 2], [3, 4], [5]])
        await clock.waitForSleepers()
        #expect(clock.pendingWaits == [.milliseconds(10)], "only the batch that emptied the queue is followed by the linger")
    }

    @Test("an urgent item ends a pause at once, and one queued before the pause keeps it from starting")
    func urgentItemEndsThePause() async throws {
        let queue = GroupCommitQueue<Int>(capacity: 100)
        let clock = MockClock()
        let flushes = Flushes()
        let consumer = Task { await queue.consume(maximumWeight: 10, linger: linger, clock: clock) { flushes.record($0) } }
        defer { consumer.cancel() }

        try await queue.enqueue(1)
        #expect(await flushes.next() == [[1]])
        await clock.waitForSleepers()
        try await queue.enqueue(2)
        try await queue.enqueue(3, urgent: true)
        #expect(await flushes.next() == [[2, 3]], "flushed without the clock moving")
        #expect(clock.now.offset == .zero)
    }

    @Test("a pause ends once a full batch waits")
    func fullBatchEndsThePause() async throws {
        let queue = GroupCommitQueue<Int>(capacity: 100)
        let clock = MockClock()
        let flushes = Flushes()
        let consumer = Task { await queue.consume(maximumWeight: 3, linger: linger, clock: clock) { flushes.record($0) } }
        defer { consumer.cancel() }

        try await queue.enqueue(1)
        #expect(await flushes.next() == [[1]])
        await clock.waitForSleepers()
        for value in 2...4 { try await queue.enqueue(value) }
        #expect(await flushes.next() == [[2, 3, 4]], "flushed without the clock moving")
        #expect(clock.now.offset == .zero)
    }

    @Test("without a linger, nothing waits on the clock")
    func noLingerNoPause() async throws {
        let queue = GroupCommitQueue<Int>(capacity: 100)
        let clock = MockClock()
        let flushes = Flushes()
        let consumer = Task { await queue.consume(maximumWeight: 10, linger: nil, clock: clock) { flushes.record($0) } }
        defer { consumer.cancel() }
        try await queue.enqueue(1)
        #expect(await flushes.next() == [[1]])
        try await queue.enqueue(2)
        #expect(await flushes.next() == [[2]])
        #expect(clock.sleepers == 0)
    }

    @Test("graceful shutdown ends a pause at once and flushes what came during it")
    func shutdownEndsThePause() async throws {
        let queue = GroupCommitQueue<Int>(capacity: 100)
        let clock = MockClock()
        let flushes = Flushes()
        await testGracefulShutdown { trigger in
            let consumer = Task { await queue.consume(maximumWeight: 10, linger: Linger(duration: .seconds(3600)), clock: clock) { flushes.record($0) } }
            try? await queue.enqueue(1)
            _ = await flushes.next()
            await clock.waitForSleepers()
            try? await queue.enqueue(2)
            trigger.triggerGracefulShutdown()
            await consumer.value
        }
        #expect(flushes.all == [[1], [2]])
        await #expect(throws: GroupCommitQueueError.finished) { try await queue.enqueue(3) }
    }
}
