import ConveyorCore
import Testing

@Suite("GroupCommitQueue: adaptive batching")
struct GroupCommitQueueTests {
    @Test("a lone item is handed over at once; items that pile up come out together")
    func batchesGrowWithLoad() async throws {
        let queue = GroupCommitQueue<Int>(capacity: 100)
        try await queue.enqueue(1)
        #expect(await queue.nextBatch(maximumWeight: 10) == [1])
        for value in 2...6 { try await queue.enqueue(value) }
        #expect(await queue.nextBatch(maximumWeight: 10) == [2, 3, 4, 5, 6])
    }

    @Test("a batch never splits an item and respects the maximum weight (taking at least one item)")
    func respectsWeights() async throws {
        let queue = GroupCommitQueue<String>(capacity: 2000)
        try await queue.enqueue("a", weight: 400)
        try await queue.enqueue("b", weight: 400)
        try await queue.enqueue("c", weight: 300)
        #expect(await queue.nextBatch(maximumWeight: 500) == ["a"])
        #expect(await queue.nextBatch(maximumWeight: 800) == ["b", "c"])
        try await queue.enqueue("huge", weight: 5000)
        #expect(await queue.nextBatch(maximumWeight: 10) == ["huge"])
    }

    @Test("tryEnqueue takes what fits and refuses the rest at once (shedding), until a batch makes room")
    func tryEnqueueSheds() async throws {
        let queue = GroupCommitQueue<String>(capacity: 1000)
        #expect(try queue.tryEnqueue("a", weight: 600))
        #expect(!queue.isFull(forWeight: 400))
        #expect(queue.isFull(forWeight: 401))
        #expect(try !queue.tryEnqueue("b", weight: 500))
        #expect(try queue.tryEnqueue("c", weight: 400))
        #expect(queue.isFull())
        #expect(queue.pendingWeight == 1000)
        #expect(await queue.nextBatch(maximumWeight: 2000) == ["a", "c"])
        // Room again; an item heavier than the capacity still enters an empty queue.
        #expect(try queue.tryEnqueue("huge", weight: 5000))
        #expect(try !queue.tryEnqueue("d", weight: 1))
        queue.finish()
        #expect(throws: GroupCommitQueueError.finished) { try queue.tryEnqueue("e") }
    }

    @Test("after finish, queued items are still delivered, then nil; new items are refused")
    func finishDrains() async throws {
        let queue = GroupCommitQueue<Int>(capacity: 10)
        try await queue.enqueue(1)
        queue.finish()
        await #expect(throws: GroupCommitQueueError.finished) { try await queue.enqueue(2) }
        #expect(await queue.nextBatch(maximumWeight: 10) == [1])
        #expect(await queue.nextBatch(maximumWeight: 10) == nil)
    }

    @Test("a waiting consumer wakes when an item arrives")
    func consumerWakes() async throws {
        let queue = GroupCommitQueue<Int>(capacity: 10)
        async let batch = queue.nextBatch(maximumWeight: 10)
        try await Task.sleep(for: .milliseconds(20))
        try await queue.enqueue(9)
        #expect(await batch == [9])
    }

    @Test("producers wait while the queue is full and continue once the consumer takes a batch")
    func backpressure() async throws {
        let queue = GroupCommitQueue<Int>(capacity: 2)
        try await queue.enqueue(1)
        try await queue.enqueue(2)
        async let third: Void = queue.enqueue(3)
        try await Task.sleep(for: .milliseconds(20))
        #expect(queue.pendingWeight == 2, "the third item waits")
        #expect(await queue.nextBatch(maximumWeight: 10) == [1, 2])
        try await third
        #expect(await queue.nextBatch(maximumWeight: 10) == [3])
    }
}
