import ConveyorCore

/// Encodes rows in PostgreSQL's COPY text format into one byte buffer.
///
/// Columns are separated by tab, rows end with newline, NULL is `\N`, and backslash, tab, newline and
/// carriage return inside a value are escaped; a NUL byte (which PostgreSQL text cannot hold) becomes
/// U+FFFD. Hand-written because it runs for every row of every batch
/// (tasks and events) and a generic serializer would allocate per field.
public struct CopyRowEncoder: Sendable {
    public private(set) var bytes: [UInt8] = []
    private var fieldsInRow = 0

    public init(reservingCapacity capacity: Int = 0) {
        bytes.reserveCapacity(capacity)
    }

    public mutating func append(_ value: String?) {
        separate()
        guard var value else {
            bytes.append(UInt8(ascii: "\\"))
            bytes.append(UInt8(ascii: "N"))
            return
        }
        value.withUTF8 { utf8 in
            var needsEscape = false
            for byte in utf8 where byte == 0x5C || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == 0 {
                needsEscape = true
                break
            }
            if !needsEscape {
                bytes.append(contentsOf: utf8)
                return
            }
            for byte in utf8 {
                switch byte {
                case 0x5C: bytes.append(0x5C); bytes.append(0x5C)
                case 0x09: bytes.append(0x5C); bytes.append(UInt8(ascii: "t"))
                case 0x0A: bytes.append(0x5C); bytes.append(UInt8(ascii: "n"))
                case 0x0D: bytes.append(0x5C); bytes.append(UInt8(ascii: "r"))
                // PostgreSQL text cannot hold NUL: store U+FFFD instead of failing the whole batch.
                case 0x00: bytes.append(contentsOf: [0xEF, 0xBF, 0xBD])
                default: bytes.append(byte)
                }
            }
        }
    }

    /// A field whose bytes `write` puts straight into the row. Only for text that can never need
    /// escaping (digits, ASCII names, dashes): nothing here checks it.
    public mutating func appendUnescaped(_ write: (inout [UInt8]) -> Void) {
        separate()
        write(&bytes)
    }

    /// Digits written straight into the row (ids and counts are in every row: no string per value).
    public mutating func append(_ value: Int64) {
        separate()
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        bytes.appendDecimalDigits(of: value.magnitude)
    }

    public mutating func append(_ value: Int) {
        append(Int64(value))
    }

    public mutating func append(_ value: Bool) {
        append(value ? "t" : "f")
    }

    /// A timestamptz column from Unix milliseconds.
    public mutating func append(timestampMillis value: Int64?) {
        guard let value else { return append(nil as String?) }
        separate()
        UTCTime.append(millis: value, separator: UInt8(ascii: " "), suffix: "+00", to: &bytes)
    }

    public mutating func endRow() {
        bytes.append(0x0A)
        fieldsInRow = 0
    }

    private mutating func separate() {
        if fieldsInRow > 0 { bytes.append(0x09) }
        fieldsInRow += 1
    }
}

/// PostgreSQL's timestamptz text for Unix milliseconds (`2026-11-23 10:04:05.123+00`).
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
