import ConveyorCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Encodes rows in PostgreSQL's binary COPY format (`COPY … FROM STDIN (FORMAT binary)`) into one byte
/// buffer.
///
/// Why binary: every task row, event row and merge row passes through here, and in the text format
/// PostgreSQL parsed each timestamp (`ParseDateTime`, `DecodeDateTime`, `strtod` for the fraction) and
/// each number from digits this side had just formatted: 8.5 % of PostgreSQL's samples at the ceiling
/// were such text input. Binary values are copied as they are (a timestamp is eight bytes), and text
/// needs no escaping. Hand-written because it runs for every row of every batch; a generic serializer
/// would allocate per field.
///
/// Each append names the column's SQL type, because the binary format has no conversions: a value of
/// the wrong width is refused by the server ("incorrect binary data format"), which the integration
/// tests would show on the first batch.
public struct CopyRowEncoder: Sendable {
    private var bytes: [UInt8] = []
    /// Where the current row's field count goes (written when the row ends).
    private var rowStart = -1
    private var fieldsInRow: Int16 = 0
    public private(set) var rowCount = 0

    /// The signature, flags and header extension length that open every binary COPY stream.
    static let header: [UInt8] = Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00] + [0, 0, 0, 0] + [0, 0, 0, 0]

    /// Unix milliseconds of PostgreSQL's epoch (2000-01-01 00:00:00 UTC), from which timestamps count.
    static let postgresEpochMillis: Int64 = 946_684_800_000

    public init(reservingCapacity capacity: Int = 0) {
        bytes.reserveCapacity(Self.header.count + 2 + capacity)
        bytes.append(contentsOf: Self.header)
    }

    /// A `text` column. A NUL byte, which PostgreSQL text cannot hold, becomes U+FFFD instead of failing
    /// the whole batch.
    public mutating func append(text value: String?) {
        guard var value else { return appendNull() }
        value.withUTF8 { utf8 in appendField { $0.appendReplacingNUL(utf8) } }
    }

    /// A `text` column whose bytes `write` puts straight into the row. Only for text that can never hold
    /// a NUL byte (digits, ASCII names, dashes): nothing here checks it.
    public mutating func append(textWrittenBy write: (inout [UInt8]) -> Void) {
        appendField(write)
    }

    /// A `jsonb` column: the version byte, then the JSON text (which PostgreSQL parses, as it did the text).
    public mutating func append(jsonb value: String?) {
        guard var value else { return appendNull() }
        value.withUTF8 { utf8 in
            appendField { bytes in
                bytes.append(1)
                bytes.appendReplacingNUL(utf8)
            }
        }
    }

    /// A `bigint` column.
    public mutating func append(bigint value: Int64?) {
        guard let value else { return appendNull() }
        appendLength(8)
        appendBigEndian(value)
    }

    /// An `integer` column. A value outside its range is refused by the server (see
    /// ``appendUnrepresentable()``), never wrapped: an attempt number comes from a stream entry.
    public mutating func append(integer value: Int?) {
        guard let value else { return appendNull() }
        guard let exact = Int32(exactly: value) else { return appendUnrepresentable() }
        appendLength(4)
        appendBigEndian(exact)
    }

    /// A `smallint` column (refused out of range, as ``append(integer:)``).
    public mutating func append(smallint value: Int?) {
        guard let value else { return appendNull() }
        guard let exact = Int16(exactly: value) else { return appendUnrepresentable() }
        appendLength(2)
        appendBigEndian(exact)
    }

    /// A `boolean` column.
    public mutating func append(boolean value: Bool) {
        appendLength(1)
        bytes.append(value ? 1 : 0)
    }

    /// A `timestamptz` column from Unix milliseconds: microseconds since PostgreSQL's epoch. One that
    /// does not fit is refused by the server (see ``appendUnrepresentable()``); one that fits but lies
    /// beyond PostgreSQL's range (294276 AD) is refused by the server itself ("timestamp out of range").
    public mutating func append(timestamptzMillis value: Int64?) {
        guard let value else { return appendNull() }
        let (sinceEpoch, below) = value.subtractingReportingOverflow(Self.postgresEpochMillis)
        let (micros, beyond) = sinceEpoch.multipliedReportingOverflow(by: 1_000)
        guard !below, !beyond else { return appendUnrepresentable() }
        appendLength(8)
        appendBigEndian(micros)
    }

    public mutating func endRow() {
        precondition(rowStart >= 0, "endRow() without a field")
        bytes[rowStart] = UInt8(truncatingIfNeeded: fieldsInRow >> 8)
        bytes[rowStart + 1] = UInt8(truncatingIfNeeded: fieldsInRow)
        rowStart = -1
        fieldsInRow = 0
        rowCount += 1
    }

    /// The stream to send: the rows and the trailer. Appended in place and handed over, so the buffer is
    /// never copied; the encoder starts a new stream afterwards.
    public mutating func finish() -> CopyRows {
        precondition(rowStart < 0, "finish() inside a row")
        bytes.append(0xFF)
        bytes.append(0xFF)
        let rows = CopyRows(bytes: bytes, count: rowCount)
        bytes = Self.header
        rowCount = 0
        return rows
    }

    /// A value its column cannot hold, as a field of nine bytes: no column Conveyor copies takes nine
    /// bytes, so the server refuses the batch ("incorrect binary data format", SQLSTATE 22P03) as it refused
    /// an out-of-range number in the text format, and the Recorder then records event by event, dropping
    /// only the bad one. Never a wrapped value that would be stored as a wrong one.
    private mutating func appendUnrepresentable() {
        appendLength(9)
        bytes.append(contentsOf: repeatElement(0 as UInt8, count: 9))
    }

    private mutating func appendNull() {
        appendLength(-1)
    }

    /// A field whose bytes `write` appends; its length is patched in afterwards.
    private mutating func appendField(_ write: (inout [UInt8]) -> Void) {
        appendLength(0)
        let lengthAt = bytes.count - 4
        write(&bytes)
        let length = UInt32(bytes.count - lengthAt - 4)
        bytes[lengthAt] = UInt8(truncatingIfNeeded: length >> 24)
        bytes[lengthAt + 1] = UInt8(truncatingIfNeeded: length >> 16)
        bytes[lengthAt + 2] = UInt8(truncatingIfNeeded: length >> 8)
        bytes[lengthAt + 3] = UInt8(truncatingIfNeeded: length)
    }

    /// A field's length word, opening the row (its field count, written at ``endRow()``) when it is the first.
    @inline(__always)
    private mutating func appendLength(_ length: Int32) {
        if rowStart < 0 {
            rowStart = bytes.count
            appendBigEndian(Int16(0))
        }
        fieldsInRow += 1
        appendBigEndian(length)
    }

    /// One copy of the value's bytes in network order (a byte at a time was 3 % of the coordinator).
    @inline(__always)
    private mutating func appendBigEndian(_ value: some FixedWidthInteger) {
        withUnsafeBytes(of: value.bigEndian) { raw in raw.withMemoryRebound(to: UInt8.self) { bytes.append(contentsOf: $0) } }
    }
}

extension [UInt8] {
    /// `utf8` as it is, or with each NUL byte (which PostgreSQL text cannot hold) as U+FFFD: one bad byte
    /// must not fail the whole batch. `memchr` first: a task's params can be kilobytes.
    fileprivate mutating func appendReplacingNUL(_ utf8: UnsafeBufferPointer<UInt8>) {
        guard let base = utf8.baseAddress, memchr(base, 0, utf8.count) != nil else { return append(contentsOf: utf8) }
        for byte in utf8 {
            if byte == 0 { append(contentsOf: [0xEF, 0xBF, 0xBD]) } else { append(byte) }
        }
    }
}

/// A finished binary COPY stream and how many rows it holds (see ``CopyRowEncoder``).
public struct CopyRows: Sendable {
    public let bytes: [UInt8]
    public let count: Int
    public var isEmpty: Bool { count == 0 }
}

/// PostgreSQL's timestamptz text for Unix milliseconds (`2026-11-23 10:04:05.123+00`), for parameters.
public enum PostgresTimestamp {
    public static func text(millis: Int64) -> String {
        UTCTime.format(millis: millis, separator: " ", suffix: "+00")
    }
}

/// Builds a PostgreSQL array literal (`{"a","b"}`) for a text[] or bigint[] parameter.
public enum PostgresArrayLiteral {
    public static func text(_ values: some Sequence<String>) -> String {
        var out = "{"
        var first = true
        for value in values {
            if !first { out += "," }
            first = false
            out += "\""
            for character in value {
                if character == "\"" || character == "\\" { out += "\\" }
                out.append(character)
            }
            out += "\""
        }
        return out + "}"
    }

    public static func integers(_ values: some Sequence<Int64>) -> String {
        "{" + values.map(String.init).joined(separator: ",") + "}"
    }

    /// The integers of an integer array as PostgreSQL prints it (`{1,2,3}`); NULL or `{}` gives none.
    public static func parseIntegers(_ text: String?) -> [Int64] {
        guard let text, text.count > 2 else { return [] }
        return text.dropFirst().dropLast().split(separator: ",").compactMap { Int64($0) }
    }
}
