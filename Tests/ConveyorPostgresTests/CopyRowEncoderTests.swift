@testable import ConveyorPostgres
import ConveyorCore
import ConveyorTesting
import Testing

/// Reads a binary COPY stream back: checks its signature, each row's field count and the trailer, and
/// returns each row's fields (nil for NULL).
func decodeCopyRows(_ rows: CopyRows) -> [[[UInt8]?]]? {
    let bytes = rows.bytes
    guard bytes.count >= 21, Array(bytes[0..<19]) == CopyRowEncoder.header, bytes.suffix(2) == [0xFF, 0xFF] else { return nil }
    func integer(_ at: Int, _ width: Int) -> Int64 {
        var value: UInt64 = 0
        for index in at..<(at + width) { value = value << 8 | UInt64(bytes[index]) }
        return width == 2 ? Int64(Int16(truncatingIfNeeded: value)) : Int64(Int32(truncatingIfNeeded: value))
    }
    var offset = 19
    var decoded: [[[UInt8]?]] = []
    while offset < bytes.count - 2 {
        let fieldCount = Int(integer(offset, 2))
        offset += 2
        var fields: [[UInt8]?] = []
        for _ in 0..<fieldCount {
            let length = Int(integer(offset, 4))
            offset += 4
            if length < 0 {
                fields.append(nil)
            } else {
                guard offset + length <= bytes.count - 2 else { return nil }
                fields.append(Array(bytes[offset..<(offset + length)]))
                offset += length
            }
        }
        decoded.append(fields)
    }
    return offset == bytes.count - 2 && decoded.count == rows.count ? decoded : nil
}

private func text(_ field: [UInt8]??) -> String? {
    guard let field, let field else { return nil }
    return String(decoding: field, as: UTF8.self)
}

@Suite("COPY encoding and PostgreSQL values")
struct CopyRowEncoderTests {
    @Test("a stream opens with the binary signature and closes with the trailer; one without rows holds only those")
    func framing() {
        var encoder = CopyRowEncoder()
        let empty = encoder.finish()
        #expect(empty.bytes == Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF])
        #expect(empty.isEmpty && empty.count == 0)
        #expect(decodeCopyRows(empty)?.isEmpty == true)
        // The encoder starts a new stream after finishing one.
        encoder.append(boolean: true)
        encoder.endRow()
        #expect(decodeCopyRows(encoder.finish())?.count == 1)
    }

    @Test("a number its column cannot hold becomes a nine-byte field, which the server refuses, instead of a wrapped value")
    func outOfRange() throws {
        var encoder = CopyRowEncoder()
        encoder.append(integer: Int(Int32.max) + 1)
        encoder.append(integer: Int(Int32.min))
        encoder.append(smallint: 40_000)
        encoder.append(smallint: Int(Int16.min))
        encoder.append(timestamptzMillis: Int64.min)
        encoder.append(timestamptzMillis: Int64.max / 10)
        encoder.endRow()
        let fields = try #require(decodeCopyRows(encoder.finish()))[0]
        #expect(fields.map { $0?.count } == [9, 4, 9, 2, 9, 9])
    }

    @Test("each row carries its field count, each field its length, and NULL is a length of -1")
    func rowsAndNulls() throws {
        var encoder = CopyRowEncoder()
        encoder.append(text: "plain")
        encoder.append(text: nil)
        encoder.append(bigint: nil)
        encoder.endRow()
        encoder.append(boolean: true)
        encoder.append(boolean: false)
        encoder.endRow()
        let rows = encoder.finish()
        #expect(rows.count == 2)
        let decoded = try #require(decodeCopyRows(rows))
        #expect(decoded[0] == [Array("plain".utf8), nil, nil])
        #expect(decoded[1] == [[1], [0]])
        // The first row byte for byte: field count 3, length 5 and the text, then two NULLs.
        #expect(Array(rows.bytes[19..<(19 + 2 + 4 + 5 + 8)]) == [0, 3, 0, 0, 0, 5] + Array("plain".utf8) + [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
    }

    @Test("text is copied as it is, tabs, newlines and backslashes included; a NUL byte becomes U+FFFD")
    func textNeedsNoEscaping() throws {
        var encoder = CopyRowEncoder()
        encoder.append(text: "tab\there\nnew\\slash\rcr")
        encoder.append(text: "a\u{0}b")
        encoder.append(text: "")
        encoder.append(textWrittenBy: { $0.append(contentsOf: Array("12-1-running".utf8)) })
        encoder.endRow()
        let fields = try #require(decodeCopyRows(encoder.finish()))[0]
        #expect(text(fields[0]) == "tab\there\nnew\\slash\rcr")
        #expect(text(fields[1]) == "a\u{FFFD}b")
        #expect(fields[2] == [])
        #expect(text(fields[3]) == "12-1-running")
    }

    @Test("jsonb is the version byte and the JSON text")
    func jsonb() throws {
        var encoder = CopyRowEncoder()
        encoder.append(jsonb: #"{"a":"x\ty"}"#)
        encoder.append(jsonb: nil)
        encoder.append(jsonb: "\"a\u{0}\"")
        encoder.endRow()
        let fields = try #require(decodeCopyRows(encoder.finish()))[0]
        #expect(fields[0] == [1] + Array(#"{"a":"x\ty"}"#.utf8))
        #expect(fields[1] == nil)
        #expect(fields[2] == [1] + Array("\"a\u{FFFD}\"".utf8))
    }

    @Test("timestamps are microseconds since 2000-01-01 UTC, negative before it")
    func timestamps() throws {
        #expect(PostgresTimestamp.text(millis: 1_000) == "1970-01-01 00:00:01.000+00")
        var encoder = CopyRowEncoder()
        encoder.append(timestamptzMillis: 946_684_800_000)
        encoder.append(timestamptzMillis: 946_684_800_001)
        encoder.append(timestamptzMillis: nil)
        encoder.append(timestamptzMillis: 1_000)
        encoder.endRow()
        let fields = try #require(decodeCopyRows(encoder.finish()))[0]
        #expect(fields[0] == [0, 0, 0, 0, 0, 0, 0, 0])
        #expect(fields[1] == [0, 0, 0, 0, 0, 0, 0x03, 0xE8])
        #expect(fields[2] == nil)
        // (1,000 - 946,684,800,000) ms = -946,684,799,000,000 µs, two's complement.
        let micros = UInt64(bitPattern: Int64(-946_684_799_000_000))
        #expect(fields[3] == (0..<8).map { UInt8(truncatingIfNeeded: micros >> (56 - 8 * UInt64($0))) })
    }

    @Test("integers are big-endian at the column's width, the extremes included")
    func integers() throws {
        var encoder = CopyRowEncoder()
        encoder.append(bigint: Int64.max)
        encoder.append(bigint: Int64.min)
        encoder.append(bigint: -5)
        encoder.append(integer: -5)
        encoder.append(integer: 1_234_567_890)
        encoder.append(smallint: 2)
        encoder.append(smallint: -1)
        encoder.append(integer: nil)
        encoder.append(smallint: nil)
        encoder.endRow()
        let fields = try #require(decodeCopyRows(encoder.finish()))[0]
        #expect(fields[0] == [0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        #expect(fields[1] == [0x80, 0, 0, 0, 0, 0, 0, 0])
        #expect(fields[2] == [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFB])
        #expect(fields[3] == [0xFF, 0xFF, 0xFF, 0xFB])
        #expect(fields[4] == [0x49, 0x96, 0x02, 0xD2])
        #expect(fields[5] == [0, 2])
        #expect(fields[6] == [0xFF, 0xFF])
        #expect(fields[7] == nil && fields[8] == nil)
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

    @Test("any batch coalesces as a task-by-task fold of its events in arrival order (500 seeded batches)")
    func agreesWithAFoldPerTask() {
        var random = SeededGenerator(seed: 17)
        let statuses: [TaskStatus] = [.running, .succeeded, .failed, .retrying, .dead, .cancelled]
        for _ in 0..<500 {
            var batch: [LifecycleEvent] = []
            for position in 0..<Int.random(in: 1...40, using: &random) {
                var next = event(
                    Int64.random(in: 1...12, using: &random), statuses.randomElement(using: &random)!,
                    attempt: Int.random(in: 1...3, using: &random), at: Int64.random(in: 1...6, using: &random))
                next.agent = "agent-\(position)"
                if Bool.random(using: &random) { next.startedAtMillis = Int64.random(in: 1...6, using: &random) }
                batch.append(next)
            }
            #expect(EventStore.coalesce(batch) == Self.foldPerTask(batch))
        }
    }

    /// The rule spelled out the slow way: each task's events folded in the order they came, the tasks
    /// in id order.
    private static func foldPerTask(_ events: [LifecycleEvent]) -> [LifecycleEvent] {
        var folded: [TaskID: LifecycleEvent] = [:]
        for event in events {
            guard var state = folded[event.taskID] else {
                var first = event
                if first.status == .running, first.startedAtMillis == nil { first.startedAtMillis = first.atMillis }
                folded[event.taskID] = first
                continue
            }
            var starts = [state.startedAtMillis, event.startedAtMillis].compactMap { $0 }
            if event.status == .running { starts.append(event.atMillis) }
            let newer = (event.attempt, event.rank, event.atMillis) > (state.attempt, state.rank, state.atMillis)
            if newer { state = event }
            state.startedAtMillis = starts.min()
            folded[event.taskID] = state
        }
        return folded.keys.sorted().map { folded[$0]! }
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
        let rows = try #require(decodeCopyRows(EventStore.encodeHistory([first, second])))
        let firstColumns = rows[0].map { text($0) }
        let secondColumns = rows[1].map { text($0) }
        #expect(firstColumns[0] == "12-1-retrying")
        #expect(rows[0][1] == [0, 0, 0, 0, 0, 0, 0, 12] && rows[0][3] == [0, 0, 0, 1])
        // The detail is jsonb: its version byte, then the JSON (the error's tab JSON-escaped, nothing
        // COPY-escaped); the first row's fields do not reach the second's.
        #expect(firstColumns[6] == "\u{1}" + #"{"cid":"c","error":"line\tbreak","result":{"path":"a\\b"},"started":900,"dispatched":800,"next_attempt":5000}"#)
        #expect(secondColumns[0] == "12-2-progress-2000")
        #expect(secondColumns[2] == "progress")
        #expect(secondColumns[6]?.hasPrefix("\u{1}" + #"{"cid":"c","progress":{"#) == true)
        #expect(secondColumns[6]?.contains("result") == false)
    }
}
