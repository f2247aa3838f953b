@testable import ConveyorPostgres
import Testing

@Suite("BinaryArrayEncoder: a batch column in PostgreSQL's binary array format")
struct BinaryArrayEncoderTests {
    private func int32(_ bytes: [UInt8], at offset: Int) -> Int32 {
        bytes[offset..<offset + 4].reduce(Int32(0)) { $0 << 8 | Int32($1) }
    }

    @Test("the header names one dimension, whether any element is NULL, the element type, the length and lower bound 1")
    func header() {
        var ids = BinaryArrayEncoder(of: .bigint)
        ids.append(bigint: 7)
        ids.append(bigint: -1)
        let bytes = ids.finish()
        #expect(int32(bytes, at: 0) == 1, "dimensions")
        #expect(int32(bytes, at: 4) == 0, "no NULL")
        #expect(int32(bytes, at: 8) == 20, "int8's OID")
        #expect(int32(bytes, at: 12) == 2, "length")
        #expect(int32(bytes, at: 16) == 1, "lower bound")
        #expect(Array(bytes[20...]) == [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 8, 255, 255, 255, 255, 255, 255, 255, 255])
    }

    @Test("a NULL element is a length of -1 and sets the header's flag")
    func nulls() {
        var errors = BinaryArrayEncoder(of: .text)
        errors.append(text: nil)
        errors.append(text: "boom")
        let bytes = errors.finish()
        #expect(int32(bytes, at: 4) == 1)
        #expect(int32(bytes, at: 8) == 25)
        #expect(Array(bytes[20...]) == [255, 255, 255, 255, 0, 0, 0, 4] + Array("boom".utf8))
    }

    @Test("elements are written as COPY fields are: jsonb's version byte, timestamps in µs since 2000, text with NUL as U+FFFD")
    func elementsAsCopyFields() {
        var reports = BinaryArrayEncoder(of: .jsonb)
        reports.append(jsonb: "{}")
        #expect(Array(reports.finish()[20...]) == [0, 0, 0, 3, 1] + Array("{}".utf8))
        var times = BinaryArrayEncoder(of: .timestamptz)
        times.append(timestamptzMillis: 946_684_800_001)
        #expect(Array(times.finish()[20...]) == [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0x03, 0xE8])
        var names = BinaryArrayEncoder(of: .text)
        names.append(text: "a\u{0}")
        #expect(Array(names.finish()[20...]) == [0, 0, 0, 4, UInt8(ascii: "a"), 0xEF, 0xBF, 0xBD])
    }

    @Test("an integer its type cannot hold becomes a nine-byte element, which the server refuses, never a wrapped value")
    func outOfRange() {
        var attempts = BinaryArrayEncoder(of: .integer)
        attempts.append(integer: Int(Int32.max) + 1)
        #expect(Array(attempts.finish()[20...]) == [0, 0, 0, 9] + Array(repeating: 0, count: 9))
    }

    @Test("an empty array has no dimensions; the encoder starts afresh after finish()")
    func emptyAndReuse() {
        var ids = BinaryArrayEncoder(of: .bigint)
        #expect(ids.finish() == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20])
        ids.append(bigint: 1)
        #expect(int32(ids.finish(), at: 12) == 1)
        #expect(int32(ids.finish(), at: 0) == 0, "nothing carried over")
    }
}

@Suite("BinaryArrayColumns: a batch cut into statements of bounded size")
struct BinaryArrayColumnsTests {
    private func count(_ column: [UInt8]) -> Int32 {
        column.count < 20 ? 0 : column[12..<16].reduce(Int32(0)) { $0 << 8 | Int32($1) }
    }

    @Test("rows go to the next chunk once a chunk reaches its size, in order, with every column cut at the same row")
    func chunksKeepRowsTogether() {
        var rows = BinaryArrayColumns([(.bigint, 12), (.text, 8)], rows: 10, chunkBytes: 100)
        for id in 0..<10 {
            rows.columns[0].append(bigint: Int64(id))
            rows.columns[1].append(text: "row \(id)")
            rows.endRow()
        }
        let chunks = rows.finish()
        #expect(chunks.count > 1)
        #expect(chunks.allSatisfy { $0.count == 2 && count($0[0]) == count($0[1]) })
        #expect(chunks.map { count($0[0]) }.reduce(0, +) == 10)
        // The first id of each chunk follows the last of the one before: ids are 8-byte elements after the header.
        let firstIDs = chunks.map { $0[0][24..<32].reduce(Int64(0)) { $0 << 8 | Int64($1) } }
        #expect(firstIDs == firstIDs.sorted() && firstIDs.first == 0)
    }

    @Test("a batch under the size is one chunk; no rows, no chunk")
    func smallAndEmpty() {
        var rows = BinaryArrayColumns([(.bigint, 12)], rows: 2)
        rows.columns[0].append(bigint: 1)
        rows.endRow()
        #expect(rows.finish().count == 1)
        var empty = BinaryArrayColumns([(.bigint, 12)], rows: 0)
        #expect(empty.finish().isEmpty)
    }
}
