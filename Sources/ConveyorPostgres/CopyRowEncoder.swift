import ConveyorCore

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

    public init(reservingCapacity capacity: Int = 0) {
        bytes.reserveCapacity(Self.header.count + 2 + capacity)
        bytes.append(contentsOf: Self.header)
    }

    /// A `text` column. A NUL byte, which PostgreSQL text cannot hold, becomes U+FFFD instead of failing
    /// the whole batch.
    public mutating func append(text value: String?) {
        openField()
        guard let value else { return bytes.appendNullValue() }
        bytes.appendValue(text: value)
    }

    /// A `text` column whose bytes `write` puts straight into the row. Only for text that can never hold
    /// a NUL byte (digits, ASCII names, dashes): nothing here checks it.
    public mutating func append(textWrittenBy write: (inout [UInt8]) -> Void) {
        openField()
        bytes.appendValue(write)
    }

    /// A `jsonb` column: the version byte, then the JSON text (which PostgreSQL parses, as it did the text).
    public mutating func append(jsonb value: String?) {
        openField()
        guard let value else { return bytes.appendNullValue() }
        bytes.appendValue(jsonb: value)
    }

    /// A `jsonb` column from JSON text already in bytes.
    public mutating func append(jsonb value: [UInt8]) {
        openField()
        bytes.appendValue(jsonb: value)
    }

    /// A `bigint` column.
    public mutating func append(bigint value: Int64?) {
        openField()
        guard let value else { return bytes.appendNullValue() }
        bytes.appendValue(bigint: value)
    }

    /// An `integer` column. A value outside its range is refused by the server (a field of nine bytes,
    /// SQLSTATE 22P03), never wrapped: an attempt number comes from a stream entry.
    public mutating func append(integer value: Int?) {
        openField()
        guard let value else { return bytes.appendNullValue() }
        bytes.appendValue(integer: value)
    }

    /// A `smallint` column (refused out of range, as ``append(integer:)``).
    public mutating func append(smallint value: Int?) {
        openField()
        guard let value else { return bytes.appendNullValue() }
        bytes.appendValue(smallint: value)
    }

    /// A `boolean` column.
    public mutating func append(boolean value: Bool) {
        openField()
        bytes.appendValue(boolean: value)
    }

    /// A `timestamptz` column from Unix milliseconds: microseconds since PostgreSQL's epoch. One that
    /// does not fit is refused by the server (as ``append(integer:)``); one that fits but lies beyond
    /// PostgreSQL's range (294276 AD) is refused by the server itself ("timestamp out of range").
    public mutating func append(timestamptzMillis value: Int64?) {
        openField()
        guard let value else { return bytes.appendNullValue() }
        bytes.appendValue(timestamptzMillis: value)
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

    /// Counts a field, opening the row (its field count, written at ``endRow()``) when it is the first.
    @inline(__always)
    private mutating func openField() {
        if rowStart < 0 {
            rowStart = bytes.count
            bytes.appendBigEndian(Int16(0))
        }
        fieldsInRow += 1
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
