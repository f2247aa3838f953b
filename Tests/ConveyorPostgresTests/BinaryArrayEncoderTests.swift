import ConveyorPostgres
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
