@testable import ConveyorAgent
import Synchronization
import Testing

@Suite("ReadAhead: an agent reads beyond its free slots only what its tasks free during a read")
struct ReadAheadTests {
    @Test("while a stream has a backlog, the next read also asks for the slots freed during the last one")
    func backlogReadsTheFreedSlotsAhead() {
        var readAhead = ReadAhead(limit: 64)
        readAhead.roundEnded(backlog: true, freedMeanwhile: 37)
        #expect(readAhead.allowance == 37)
        readAhead.roundEnded(backlog: true, freedMeanwhile: 12)
        #expect(readAhead.allowance == 12, "it follows the last round, not the largest")
    }

    @Test("never more than the agent's concurrency beyond its free slots")
    func boundedByConcurrency() {
        var readAhead = ReadAhead(limit: 64)
        readAhead.roundEnded(backlog: true, freedMeanwhile: 5_000)
        #expect(readAhead.allowance == 64)
    }

    @Test("without a backlog nothing is read ahead: a read that got less than it asked for stops it at once")
    func noBacklogNoReadAhead() {
        var readAhead = ReadAhead(limit: 64)
        readAhead.roundEnded(backlog: true, freedMeanwhile: 40)
        readAhead.roundEnded(backlog: false, freedMeanwhile: 40)
        #expect(readAhead.allowance == 0)
    }

    @Test("slow tasks free no slot during a read, so their agent reads nothing ahead even with a backlog")
    func slowTasksReadNothingAhead() {
        var readAhead = ReadAhead(limit: 64)
        readAhead.roundEnded(backlog: true, freedMeanwhile: 0)
        #expect(readAhead.allowance == 0)
    }
}

@Suite("SlotPool: the room a read may take", .timeLimit(.minutes(1)))
struct SlotPoolTests {
    @Test("the room is the free slots plus the read-ahead; entries read ahead take it below zero until slots free")
    func roomIncludesReadAhead() async {
        let slots = SlotPool(capacity: 4)
        slots.setReadAhead(3)
        #expect(await slots.waitForRoom() == 7)
        slots.take(7)
        #expect(slots.free == -3)
        slots.release(2)
        #expect(slots.free == -1)
        #expect(await slots.waitForRoom() == 2)
        #expect(slots.releasedCount == 2)
    }

    @Test("a read waits while entries read ahead still fill the room, and wakes when a slot frees")
    func waitsUntilRoom() async {
        let slots = SlotPool(capacity: 2)
        slots.setReadAhead(1)
        slots.take(3)
        let room = Task { await slots.waitForRoom() }
        while !slots.hasWaiter { await Task.yield() }
        slots.release(1)
        #expect(await room.value == 1)
    }
}

@Suite("RunLimiter: how many run at once, first come first served", .timeLimit(.minutes(1)))
struct RunLimiterTests {
    @Test("an acquire waits while every slot is taken, and waiters are served in the order they came")
    func fifo() async {
        let limiter = RunLimiter(limit: 1)
        await limiter.acquire()
        let order = StartOrder()
        let first = Task {
            await limiter.acquire()
            order.append(1)
            limiter.release()
        }
        while limiter.waiting < 1 { await Task.yield() }
        let second = Task {
            await limiter.acquire()
            order.append(2)
            limiter.release()
        }
        while limiter.waiting < 2 { await Task.yield() }
        #expect(order.values.isEmpty, "nothing starts while the one slot is taken")
        limiter.release()
        await first.value
        await second.value
        #expect(order.values == [1, 2])
    }
}

private final class StartOrder: Sendable {
    private let storage = Mutex<[Int]>([])
    func append(_ value: Int) { storage.withLock { $0.append(value) } }
    var values: [Int] { storage.withLock { $0 } }
}
