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
        appendElement(.bigint, value) { $0.appendValue(bigint: $1) }
    }

    /// Refused by the server out of `integer`'s range, never wrapped (see ``CopyRowEncoder/append(integer:)``).
    public mutating func append(integer value: Int?) {
        appendElement(.integer, value) { $0.appendValue(integer: $1) }
    }

    public mutating func append(text value: String?) {
        appendElement(.text, value) { $0.appendValue(text: $1) }
    }

    /// A text element whose bytes `write` appends. Only for text that can never hold a NUL byte (digits,
    /// ASCII names, dashes): nothing here checks it.
    public mutating func append(textWrittenBy write: (inout [UInt8]) -> Void) {
        appendElement(.text, ()) { bytes, _ in bytes.appendValue(write) }
    }

    public mutating func append(jsonb value: String?) {
        appendElement(.jsonb, value) { $0.appendValue(jsonb: $1) }
    }

    /// A `jsonb` element from JSON text already in bytes.
    public mutating func append(jsonb value: [UInt8]) {
        appendElement(.jsonb, value) { $0.appendValue(jsonb: $1) }
    }

    public mutating func append(timestamptzMillis value: Int64?) {
        appendElement(.timestamptz, value) { $0.appendValue(timestamptzMillis: $1) }
    }

    /// One element, or NULL for nil. The element type is checked: an array of one type whose elements
    /// were written as another would be refused by the server, far from the mistake.
    @inline(__always)
    private mutating func appendElement<Value>(_ type: Element, _ value: Value?, _ write: (inout [UInt8], Value) -> Void) {
        precondition(element == type, "a \(type) in an array of \(element)")
        count += 1
        guard let value else {
            hasNull = true
            return bytes.appendNullValue()
        }
        write(&bytes, value)
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
