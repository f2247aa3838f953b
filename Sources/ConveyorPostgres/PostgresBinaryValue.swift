import ConveyorCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum PostgresBinary {
    /// Unix milliseconds of PostgreSQL's epoch (2000-01-01 00:00:00 UTC), from which timestamps count.
    static let epochMillis: Int64 = 946_684_800_000
}

/// One value in PostgreSQL's binary format: a length word (-1 for NULL), then the type's `send` bytes.
/// COPY's binary rows (``CopyRowEncoder``) and binary array parameters (``BinaryArrayEncoder``) hold their
/// values the same way, so both write them through here.
extension [UInt8] {
    mutating func appendNullValue() {
        appendBigEndian(Int32(-1))
    }

    /// `text`. A NUL byte, which PostgreSQL text cannot hold, becomes U+FFFD: one bad byte must not fail
    /// the whole batch.
    mutating func appendValue(text value: String) {
        var value = value
        value.withUTF8 { utf8 in appendValue { $0.appendReplacingNUL(utf8) } }
    }

    /// `jsonb`: the version byte, then the JSON text (which PostgreSQL parses, as it did the text).
    mutating func appendValue(jsonb value: String) {
        var value = value
        value.withUTF8 { appendValue(jsonbUTF8: $0) }
    }

    /// `jsonb` from JSON text already in bytes (NUL bytes replaced as in ``appendValue(text:)``).
    mutating func appendValue(jsonb value: [UInt8]) {
        value.withUnsafeBufferPointer { appendValue(jsonbUTF8: $0) }
    }

    private mutating func appendValue(jsonbUTF8 utf8: UnsafeBufferPointer<UInt8>) {
        appendValue { bytes in
            bytes.append(1)
            bytes.appendReplacingNUL(utf8)
        }
    }

    mutating func appendValue(bigint value: Int64) {
        appendBigEndian(Int32(8))
        appendBigEndian(value)
    }

    /// `integer`; a value outside its range as ``appendUnrepresentableValue()``, never wrapped (an attempt
    /// number comes from a stream entry).
    mutating func appendValue(integer value: Int) {
        guard let exact = Int32(exactly: value) else { return appendUnrepresentableValue() }
        appendBigEndian(Int32(4))
        appendBigEndian(exact)
    }

    mutating func appendValue(smallint value: Int) {
        guard let exact = Int16(exactly: value) else { return appendUnrepresentableValue() }
        appendBigEndian(Int32(2))
        appendBigEndian(exact)
    }

    mutating func appendValue(boolean value: Bool) {
        appendBigEndian(Int32(1))
        append(value ? 1 : 0)
    }

    /// `timestamptz` from Unix milliseconds: microseconds since PostgreSQL's epoch. One that does not fit
    /// as ``appendUnrepresentableValue()``; one that fits but lies beyond PostgreSQL's range (294276 AD)
    /// is refused by the server itself ("timestamp out of range").
    mutating func appendValue(timestamptzMillis value: Int64) {
        let (sinceEpoch, below) = value.subtractingReportingOverflow(PostgresBinary.epochMillis)
        let (micros, beyond) = sinceEpoch.multipliedReportingOverflow(by: 1_000)
        guard !below, !beyond else { return appendUnrepresentableValue() }
        appendBigEndian(Int32(8))
        appendBigEndian(micros)
    }

    /// A value its column cannot hold, as nine bytes: no type Conveyor sends takes nine, so the server
    /// refuses the statement ("incorrect binary data format", SQLSTATE 22P03) as it refused an
    /// out-of-range number in the text format, and the Recorder then records event by event, dropping
    /// only the bad one. Never a wrapped value that would be stored as a wrong one.
    mutating func appendUnrepresentableValue() {
        appendBigEndian(Int32(9))
        append(contentsOf: repeatElement(0 as UInt8, count: 9))
    }

    /// A value whose bytes `write` appends; its length is patched in afterwards.
    mutating func appendValue(_ write: (inout [UInt8]) -> Void) {
        appendBigEndian(Int32(0))
        let lengthAt = count - 4
        write(&self)
        let length = UInt32(count - lengthAt - 4)
        self[lengthAt] = UInt8(truncatingIfNeeded: length >> 24)
        self[lengthAt + 1] = UInt8(truncatingIfNeeded: length >> 16)
        self[lengthAt + 2] = UInt8(truncatingIfNeeded: length >> 8)
        self[lengthAt + 3] = UInt8(truncatingIfNeeded: length)
    }

    /// One copy of the value's bytes in network order (a byte at a time was 3 % of the coordinator).
    @inline(__always)
    mutating func appendBigEndian(_ value: some FixedWidthInteger) {
        Swift.withUnsafeBytes(of: value.bigEndian) { raw in raw.withMemoryRebound(to: UInt8.self) { append(contentsOf: $0) } }
    }

    /// `utf8` as it is, or with each NUL byte as U+FFFD. `memchr` first: a task's params can be kilobytes.
    fileprivate mutating func appendReplacingNUL(_ utf8: UnsafeBufferPointer<UInt8>) {
        guard let base = utf8.baseAddress, memchr(base, 0, utf8.count) != nil else { return append(contentsOf: utf8) }
        for byte in utf8 {
            if byte == 0 { append(contentsOf: [0xEF, 0xBF, 0xBD]) } else { append(byte) }
        }
    }
}
