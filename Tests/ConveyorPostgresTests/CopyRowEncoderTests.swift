@testable import ConveyorPostgres
import ConveyorCore
import Testing

@Suite("COPY encoding and PostgreSQL values")
struct CopyRowEncoderTests {
    @Test("fields are tab-separated, rows newline-terminated, NULL is \\N, and specials are escaped")
    func encodesRows() {
        var encoder = CopyRowEncoder()
        encoder.append("plain")
        encoder.append(nil as String?)
        encoder.append("tab\there\nnew\\slash\rcr")
        encoder.append(Int64(-5))
        encoder.endRow()
        encoder.append(true)
        encoder.endRow()
        #expect(String(decoding: encoder.bytes, as: UTF8.self) == "plain\t\\N\ttab\\there\\nnew\\\\slash\\rcr\t-5\nt\n")
    }

    @Test("a NUL byte, which PostgreSQL text cannot hold, becomes U+FFFD")
    func nulBytes() {
        var encoder = CopyRowEncoder()
        encoder.append("a\u{0}b")
        encoder.endRow()
        #expect(String(decoding: encoder.bytes, as: UTF8.self) == "a\u{FFFD}b\n")
    }

    @Test("timestamps are written in UTC with milliseconds")
    func timestamps() {
        #expect(PostgresTimestamp.text(millis: 1_000) == "1970-01-01 00:00:01.000+00")
        var encoder = CopyRowEncoder()
        encoder.append(timestampMillis: 1_795_000_000_123)
        encoder.append(timestampMillis: nil)
        encoder.append(timestampMillis: 1_000)
        encoder.endRow()
        #expect(String(decoding: encoder.bytes, as: UTF8.self) == "2026-11-18 11:06:40.123+00\t\\N\t1970-01-01 00:00:01.000+00\n")
    }

    @Test("integers are written as their decimal digits, the extremes included")
    func integers() {
        var encoder = CopyRowEncoder()
        for value in [0, 7, -5, 1_234_567_890, Int64.max, Int64.min] { encoder.append(value) }
        encoder.append(42 as Int)
        encoder.endRow()
        #expect(String(decoding: encoder.bytes, as: UTF8.self) == "0\t7\t-5\t1234567890\t9223372036854775807\t-9223372036854775808\t42\n")
    }

    @Test("array literals quote and escape every element")
    func arrayLiterals() {
        #expect(PostgresArrayLiteral.text(["a", "b\"c", "d\\e", ""]) == #"{"a","b\"c","d\\e",""}"#)
        #expect(PostgresArrayLiteral.integers([1, 2, 3]) == "{1,2,3}")
    }

    @Test("postgres:// URLs are accepted; other schemes and bad ports are not; passwords are redacted")
    func configuration() throws {
        let configuration = try PostgresConfiguration(url: "postgres://app:pw@db:5433/conveyor?sslmode=require")
        #expect(configuration.redactedURL == "postgres://app:***@db:5433/conveyor?sslmode=require")
        #expect(throws: ConfigurationError.self) { try PostgresConfiguration(url: "mysql://db/x") }
        #expect(throws: ConfigurationError.self) { try PostgresConfiguration(url: "postgres://db:port/x") }
    }
}

@Suite("Recording: coalescing a batch of events")
struct EventCoalescingTests {
    private func event(_ id: Int64, _ status: TaskStatus, attempt: Int = 1, at: Int64) -> LifecycleEvent {
        LifecycleEvent(taskID: TaskID(id), status: status, attempt: attempt, agent: "a", atMillis: at, correlationID: "c", type: "t")
    }

    @Test("running and succeeded of one task become one row carrying the start time")
    func foldsRunningIntoOutcome() {
        let merged = EventStore.coalesce([event(1, .running, at: 10), event(1, .succeeded, at: 20)])
        #expect(merged.count == 1)
        #expect(merged[0].status == .succeeded)
        #expect(merged[0].startedAtMillis == 10)
    }

    @Test("a late running event does not replace a terminal one in the same batch")
    func lateRunningLoses() {
        let merged = EventStore.coalesce([event(1, .succeeded, at: 20), event(1, .running, at: 10)])
        #expect(merged[0].status == .succeeded)
        #expect(merged[0].startedAtMillis == 10)
    }

    @Test("the latest attempt wins, and different tasks stay apart")
    func attemptsAndTasks() {
        let merged = EventStore.coalesce([
            event(1, .retrying, attempt: 1, at: 5), event(1, .running, attempt: 2, at: 6), event(2, .running, at: 7),
        ])
        #expect(merged.map(\.taskID.rawValue) == [1, 2])
        #expect(merged[0].status == .running && merged[0].attempt == 2)
    }

    @Test("a later attempt outranks an earlier terminal event; within an attempt a full tie keeps the first seen")
    func laterAttemptAndTies() {
        let merged = EventStore.coalesce([event(1, .dead, attempt: 1, at: 9), event(1, .running, attempt: 2, at: 5)])
        #expect(merged[0].status == .running && merged[0].attempt == 2)
        var first = event(2, .succeeded, at: 7)
        first.agent = "first"
        var second = event(2, .succeeded, at: 7)
        second.agent = "second"
        #expect(EventStore.coalesce([first, second])[0].agent == "first")
    }

    @Test("the merged rows come in task order, whatever order their events arrived in")
    func taskOrder() {
        let merged = EventStore.coalesce([
            event(9, .running, at: 1), event(3, .running, at: 2), event(9, .succeeded, at: 3), event(5, .failed, at: 4),
            event(3, .succeeded, at: 5),
        ])
        #expect(merged.map(\.taskID.rawValue) == [3, 5, 9])
        #expect(merged.map(\.status) == [.succeeded, .failed, .succeeded])
        #expect(merged.map(\.startedAtMillis) == [2, nil, 1])
    }

    @Test("a history row holds the event's id, and a detail built afresh for each event")
    func historyRows() throws {
        var first = event(12, .retrying, at: 1_000)
        first.startedAtMillis = 900
        first.result = "{\"path\":\"a\\\\b\"}"
        first.error = "line\tbreak"
        first.dispatchedAtMillis = 800
        first.nextAttemptAtMillis = 5_000
        var second = event(12, .running, attempt: 2, at: 2_000)
        second.progress = try TaskProgress(fraction: 0.5)
        let rows = String(decoding: EventStore.encodeHistory([first, second]), as: UTF8.self).split(separator: "\n")
        let firstColumns = rows[0].split(separator: "\t", omittingEmptySubsequences: false)
        let secondColumns = rows[1].split(separator: "\t", omittingEmptySubsequences: false)
        #expect(firstColumns[0] == "12-1-retrying")
        // Backslashes are doubled for COPY (the error's tab is JSON-escaped first); the first row's
        // fields do not reach the second's.
        #expect(firstColumns[6] == #"{"cid":"c","error":"line\\tbreak","result":{"path":"a\\\\b"},"started":900,"dispatched":800,"next_attempt":5000}"#)
        #expect(secondColumns[0] == "12-2-progress-2000")
        #expect(secondColumns[2] == "progress")
        #expect(secondColumns[6].hasPrefix(#"{"cid":"c","progress":{"#))
        #expect(!secondColumns[6].contains("result"))
    }
}
