/// A one-dimensional array parameter in PostgreSQL's binary format (what `array_recv` reads), so that a
/// statement can take a batch as columns: `FROM unnest($1::bigint[], $2::text[], …) AS m(id, status, …)`.
///
/// Why not COPY into a temporary table, as the Recorder's merges did: a transaction that touches any
/// temporary table truncates every `ON COMMIT DELETE ROWS` table of the session at COMMIT, with their
/// TOAST tables, whose indexes are rebuilt (updating `pg_class` and sending every backend an
/// invalidation). With single POSTs (a merge of a few dozen rows at a time) that was 18 % of
/// PostgreSQL's CPU. An array parameter is read in the statement that uses it, and costs no COPY round
/// trips.
///
/// Values are written as in a binary COPY row (``CopyRowEncoder``): the server refuses a value of the
/// wrong width or type as "improper binary format" (SQLSTATE 22P03), as it refuses such a COPY field.
public struct BinaryArrayEncoder: Sendable {
    /// The element type, by its OID (the header names it, and the server checks it against the cast).
    public enum Element: Int32, Sendable {
        case bigint = 20
        case integer = 23
        case text = 25
        case timestamptz = 1184
        case jsonb = 3802
    }

    public let element: Element
    private var bytes: [UInt8] = []
    private var count: Int32 = 0
    private var hasNull = false

    /// Dimensions, the null flag, the element type, then the one dimension's length and lower bound.
    private static let headerSize = 20

    /// The bytes written so far, the header included.
    public var byteCount: Int { bytes.count }

    public init(of element: Element, reservingCapacity capacity: Int = 0) {
        self.element = element
        bytes.reserveCapacity(Self.headerSize + capacity)
        bytes.append(contentsOf: repeatElement(0, count: Self.headerSize))
    }

    public mutating func append(bigint value: Int64?) {
        precondition(element == .bigint, "a bigint in an array of \(element)")
        guard let value else { return appendNull() }
        count += 1
        bytes.appendValue(bigint: value)
    }

    /// Refused by the server out of `integer`'s range, never wrapped (see ``CopyRowEncoder/append(integer:)``).
    public mutating func append(integer value: Int?) {
        precondition(element == .integer, "an integer in an array of \(element)")
        guard let value else { return appendNull() }
        count += 1
        bytes.appendValue(integer: value)
    }

    public mutating func append(text value: String?) {
        precondition(element == .text, "a text in an array of \(element)")
        guard let value else { return appendNull() }
        count += 1
        bytes.appendValue(text: value)
    }

    /// A text element whose bytes `write` appends. Only for text that can never hold a NUL byte (digits,
    /// ASCII names, dashes): nothing here checks it.
    public mutating func append(textWrittenBy write: (inout [UInt8]) -> Void) {
        precondition(element == .text, "a text in an array of \(element)")
        count += 1
        bytes.appendValue(write)
    }

    public mutating func append(jsonb value: String?) {
        precondition(element == .jsonb, "a jsonb in an array of \(element)")
        guard let value else { return appendNull() }
        count += 1
        bytes.appendValue(jsonb: value)
    }

    public mutating func append(timestamptzMillis value: Int64?) {
        precondition(element == .timestamptz, "a timestamptz in an array of \(element)")
        guard let value else { return appendNull() }
        count += 1
        bytes.appendValue(timestamptzMillis: value)
    }

    private mutating func appendNull() {
        count += 1
        hasNull = true
        bytes.appendNullValue()
    }

    /// The parameter's bytes (an empty array has no dimensions), handed over without a copy; the encoder
    /// starts a new array afterwards.
    public mutating func finish() -> [UInt8] {
        var header: [UInt8] = []
        header.reserveCapacity(Self.headerSize)
        header.appendBigEndian(Int32(count == 0 ? 0 : 1))
        header.appendBigEndian(Int32(hasNull ? 1 : 0))
        header.appendBigEndian(element.rawValue)
        guard count > 0 else { return header }
        header.appendBigEndian(count)
        header.appendBigEndian(Int32(1))
        for index in header.indices { bytes[index] = header[index] }
        let array = bytes
        self = BinaryArrayEncoder(of: element)
        return array
    }
}
