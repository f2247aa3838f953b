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

    private static func delivery(entry: String = "1-0", task: Int64 = 5) -> Delivery {
        Delivery(queue: "default", stream: "p:{default}:ready", entryID: entry, envelope: TaskEnvelope(
            id: TaskID(task), type: "t", params: "{}", correlationID: "c", attempt: 1, maxAttempts: 3, enqueuedAtMillis: 0))
    }

    private let delivery = Self.delivery()
    private let clock = FixedClock()
    private let book: ProgressBook

    init() {
        let clock = self.clock
        book = ProgressBook(now: { clock.millis.load(ordering: .relaxed) })
    }

    /// Starts the attempt at `startedAt` with the wall clock at `now`; returns what its handler reports through.
    private func start(at startedAt: Int64, now: Int64) -> ProgressBook.Sink {
        clock.set(now)
        return book.sink(for: delivery, startedAtMillis: startedAt)
    }

    /// The times of the reports the flusher would send now (`later`: past the throttle's interval).
    private func sent(later: Bool = false, running: Bool = true) -> [Int64] {
        book.due(now: .now + (later ? .seconds(2) : .zero), running: { _ in running }).map(\.atMillis)
    }

    private func report(_ message: String) throws -> TaskProgress { try TaskProgress(message: message) }

    @Test("a report made in the millisecond its attempt started is dated the millisecond after, so it follows `running`")
    func reportFollowsRunning() throws {
        start(at: 1_000, now: 1_000).report(try report("a"))
        #expect(sent() == [1_001])
    }

    @Test("a report made later keeps its own time")
    func laterReportKeepsItsTime() throws {
        start(at: 1_000, now: 5_000).report(try report("a"))
        #expect(sent() == [5_000])
    }

    @Test("two reports of one millisecond, one sent and one left for the end, get distinct times (one event id each), and the outcome comes after both")
    func sameMillisecondReportsStayDistinct() throws {
        let sink = start(at: 1_000, now: 2_000)
        sink.report(try report("a"))
        #expect(sent() == [2_000])
        sink.report(try report("b"))
        let ending = try #require(book.finish(delivery))
        #expect(ending.unsent?.progress.message == "b")
        #expect(ending.unsent?.atMillis == 2_001)
        #expect(ending.outcomeNotBefore == 2_002)
    }

    @Test("two reports of one millisecond both handed out by the flusher get distinct times")
    func sameMillisecondReportsBothSent() throws {
        let sink = start(at: 1_000, now: 2_000)
        sink.report(try report("a"))
        #expect(sent() == [2_000])
        sink.report(try report("b"))
        #expect(sent(later: true) == [2_001], "past the throttle's interval, in the same wall-clock millisecond")
    }

    @Test("an outcome in the millisecond of the last report sent is dated after it; nothing is left unsent")
    func outcomeFollowsSentReport() throws {
        start(at: 3_000, now: 3_000).report(try report("a"))
        #expect(sent() == [3_001])
        let ending = try #require(book.finish(delivery))
        #expect(ending.unsent == nil)
        #expect(ending.outcomeNotBefore == 3_002)
    }

    @Test("an attempt that never reported leaves no entry and no floor, while another attempt has one")
    func silentAttempt() throws {
        #expect(book.finish(delivery) == nil)
        let other = Self.delivery(entry: "2-0", task: 6)
        book.sink(for: other, startedAtMillis: 0).report(try report("a"))
        #expect(book.count == 1)
        #expect(book.finish(delivery) == nil)
        #expect(book.finish(other) != nil)
    }

    @Test("a report made after its attempt ended is dropped; the attempt leaves the book once it is no longer held")
    func lateReportIsDropped() throws {
        let sink = start(at: 1_000, now: 3_000)
        sink.report(try report("a"))
        _ = try #require(book.finish(delivery))
        sink.report(try report("late"))
        #expect(sent().isEmpty, "nothing sent for an ended attempt")
        #expect(book.finish(delivery) == nil)
        #expect(book.count == 1, "kept while the executor still holds the attempt")
        #expect(sent(running: false).isEmpty)
        #expect(book.count == 0)
    }

    @Test("a new run of an entry that ended on this agent reports afresh")
    func newRunReportsAfresh() throws {
        start(at: 1_000, now: 4_000).report(try report("a"))
        _ = try #require(book.finish(delivery))
        start(at: 4_000, now: 4_000).report(try report("again"))
        #expect(book.due(now: .now, running: { _ in true }).map { $0.1.message } == ["again"])
    }
}
