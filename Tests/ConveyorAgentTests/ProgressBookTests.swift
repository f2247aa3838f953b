@testable import ConveyorAgent
import ConveyorCore
import Synchronization
import Testing

@Suite("ProgressBook: an attempt's reports and outcome are dated in the order they happened")
struct ProgressBookTests {
    /// A wall clock the test sets (Unix ms).
    private final class FixedClock: Sendable {
        let millis = Atomic<Int64>(0)
        func set(_ value: Int64) { millis.store(value, ordering: .relaxed) }
    }

    private func book(_ clock: FixedClock) -> ProgressBook {
        ProgressBook(now: { clock.millis.load(ordering: .relaxed) })
    }

    private let delivery = Delivery(queue: "default", stream: "p:{default}:ready", entryID: "1-0", envelope: TaskEnvelope(
        id: TaskID(5), type: "t", params: "{}", correlationID: "c", attempt: 1, maxAttempts: 3, enqueuedAtMillis: 0))

    private func report(_ message: String) throws -> TaskProgress { try TaskProgress(message: message) }

    @Test("a report made in the millisecond its attempt started is dated the millisecond after, so it follows `running`")
    func reportFollowsRunning() throws {
        let clock = FixedClock()
        clock.set(1_000)
        let book = book(clock)
        book.sink(for: delivery, startedAtMillis: 1_000).report(try report("a"))
        let due = book.due(now: .now, running: { _ in true })
        #expect(due.map(\.atMillis) == [1_001])
    }

    @Test("a report made later keeps its own time")
    func laterReportKeepsItsTime() throws {
        let clock = FixedClock()
        clock.set(5_000)
        let book = book(clock)
        book.sink(for: delivery, startedAtMillis: 1_000).report(try report("a"))
        #expect(book.due(now: .now, running: { _ in true }).map(\.atMillis) == [5_000])
    }

    @Test("two reports of one millisecond, one sent and one left for the end, get distinct times (one event id each), and the outcome comes after both")
    func sameMillisecondReportsStayDistinct() throws {
        let clock = FixedClock()
        clock.set(2_000)
        let book = book(clock)
        let sink = book.sink(for: delivery, startedAtMillis: 1_000)
        sink.report(try report("a"))
        #expect(book.due(now: .now, running: { _ in true }).map(\.atMillis) == [2_000])
        sink.report(try report("b"))
        let ending = try #require(book.finish(delivery))
        #expect(ending.unsent?.progress.message == "b")
        #expect(ending.unsent?.atMillis == 2_001)
        #expect(ending.outcomeNotBefore == 2_002)
    }

    @Test("two reports of one millisecond both handed out by the flusher get distinct times")
    func sameMillisecondReportsBothSent() throws {
        let clock = FixedClock()
        clock.set(2_000)
        let book = book(clock)
        let sink = book.sink(for: delivery, startedAtMillis: 1_000)
        sink.report(try report("a"))
        #expect(book.due(now: .now, running: { _ in true }).map(\.atMillis) == [2_000])
        sink.report(try report("b"))
        // Past the throttle's interval, still in the same wall-clock millisecond.
        #expect(book.due(now: .now + .seconds(2), running: { _ in true }).map(\.atMillis) == [2_001])
    }

    @Test("an outcome in the millisecond of the last report sent is dated after it; nothing is left unsent")
    func outcomeFollowsSentReport() throws {
        let clock = FixedClock()
        clock.set(3_000)
        let book = book(clock)
        book.sink(for: delivery, startedAtMillis: 3_000).report(try report("a"))
        #expect(book.due(now: .now, running: { _ in true }).map(\.atMillis) == [3_001])
        let ending = try #require(book.finish(delivery))
        #expect(ending.unsent == nil)
        #expect(ending.outcomeNotBefore == 3_002)
    }

    @Test("an attempt that never reported leaves no entry and no floor, while another attempt has one")
    func silentAttempt() throws {
        let book = book(FixedClock())
        #expect(book.finish(delivery) == nil)
        let other = Delivery(queue: "default", stream: "p:{default}:ready", entryID: "2-0", envelope: TaskEnvelope(
            id: TaskID(6), type: "t", params: "{}", correlationID: "c", attempt: 1, maxAttempts: 3, enqueuedAtMillis: 0))
        book.sink(for: other, startedAtMillis: 0).report(try report("a"))
        #expect(book.count == 1)
        #expect(book.finish(delivery) == nil)
        #expect(book.finish(other) != nil)
    }

    @Test("a report made after its attempt ended is dropped; the attempt leaves the book once it is no longer held")
    func lateReportIsDropped() throws {
        let clock = FixedClock()
        clock.set(3_000)
        let book = book(clock)
        let sink = book.sink(for: delivery, startedAtMillis: 1_000)
        sink.report(try report("a"))
        _ = try #require(book.finish(delivery))
        sink.report(try report("late"))
        #expect(book.due(now: .now, running: { _ in true }).isEmpty, "nothing sent for an ended attempt")
        #expect(book.finish(delivery) == nil)
        #expect(book.count == 1, "kept while the executor still holds the attempt")
        #expect(book.due(now: .now, running: { _ in false }).isEmpty)
        #expect(book.count == 0)
    }

    @Test("a new run of an entry that ended on this agent reports afresh")
    func newRunReportsAfresh() throws {
        let clock = FixedClock()
        clock.set(4_000)
        let book = book(clock)
        book.sink(for: delivery, startedAtMillis: 1_000).report(try report("a"))
        _ = try #require(book.finish(delivery))
        book.sink(for: delivery, startedAtMillis: 4_000).report(try report("again"))
        #expect(book.due(now: .now, running: { _ in true }).map { $0.1.message } == ["again"])
    }
}
