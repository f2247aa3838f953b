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
        #expect(book.count == 0)
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

    @Test("an attempt that never reported leaves no entry and no floor")
    func silentAttempt() {
        let book = book(FixedClock())
        #expect(book.finish(delivery) == nil)
    }
}
