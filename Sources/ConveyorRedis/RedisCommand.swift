import ConveyorCore

/// A command: all arguments in one flat byte buffer plus their lengths.
///
/// Why flat: a pipeline of thousands of XADDs would otherwise allocate one array per argument; here a
/// command is two allocations however many arguments it has, and ``appendRESP(to:)`` writes them to the
/// wire in place.
public struct RedisCommand: Sendable, Hashable, CustomStringConvertible {
    package private(set) var bytes: [UInt8] = []
    package private(set) var lengths: [Int] = []
    /// How long the server may hold this command before answering by design (XREADGROUP … BLOCK): the
    /// round trip's deadline is the connection's command timeout plus this.
    public var blockTimeout: Duration?

    public init(_ name: String) {
        bytes.reserveCapacity(64)
        append(name)
    }

    /// A command whose size is known about in advance (an XADD of a task: its params dominate), so its
    /// buffers grow once instead of doubling their way there.
    public init(_ name: String, reservingBytes byteCount: Int, arguments argumentCount: Int) {
        bytes.reserveCapacity(byteCount)
        lengths.reserveCapacity(argumentCount)
        append(name)
    }

    public init(_ name: String, _ arguments: [String]) {
        self.init(name)
        for argument in arguments { append(argument) }
    }

    public mutating func append(_ argument: String) {
        var argument = argument
        argument.withUTF8 { utf8 in
            bytes.append(contentsOf: utf8)
            lengths.append(utf8.count)
        }
    }

    public mutating func append(_ argument: some BinaryInteger) {
        if let value = Int64(exactly: argument) { append(decimal: value) } else { append(String(argument)) }
    }

    /// A number's digits, written straight into the buffer (no string per number).
    public mutating func append(decimal argument: Int64) {
        let start = bytes.count
        if argument < 0 { bytes.append(UInt8(ascii: "-")) }
        bytes.appendDecimalDigits(of: argument.magnitude)
        lengths.append(bytes.count - start)
    }

    /// A name known at compile time (a field name, a keyword).
    public mutating func append(_ argument: StaticString) {
        argument.withUTF8Buffer { utf8 in
            bytes.append(contentsOf: utf8)
            lengths.append(utf8.count)
        }
    }

    public mutating func append(bytes argument: [UInt8]) {
        bytes.append(contentsOf: argument)
        lengths.append(argument.count)
    }

    public var argumentCount: Int { lengths.count }

    /// Appends the command in RESP (`*<n>\r\n` then `$<length>\r\n<bytes>\r\n` per argument), as
    /// hiredis' `redisFormatCommandArgv` would. Hand-written because a whole pipeline is formatted into
    /// one buffer this way: hiredis formats each command with `sdscatfmt` and then copies it again into
    /// its output buffer, 2 % of the coordinator's CPU at the ceiling.
    package func appendRESP(to wire: inout [UInt8]) {
        wire.append(UInt8(ascii: "*"))
        Self.appendDecimal(lengths.count, to: &wire)
        var offset = 0
        bytes.withUnsafeBufferPointer { argumentBytes in
            for length in lengths {
                wire.append(UInt8(ascii: "$"))
                Self.appendDecimal(length, to: &wire)
                wire.append(contentsOf: UnsafeBufferPointer(rebasing: argumentBytes[offset..<offset + length]))
                wire.append(0x0D)
                wire.append(0x0A)
                offset += length
            }
        }
    }

    /// An upper bound of ``appendRESP(to:)``'s bytes, to reserve a pipeline's buffer once (reserving per
    /// command would reallocate the growing buffer every time: `reserveCapacity` does not grow
    /// geometrically).
    package var respCapacity: Int { bytes.count + 24 + 24 * lengths.count }

    /// A count's digits and CRLF.
    private static func appendDecimal(_ value: Int, to wire: inout [UInt8]) {
        wire.appendDecimalDigits(of: UInt64(value))
        wire.append(0x0D)
        wire.append(0x0A)
    }

    /// The command's name, for error messages (arguments are left out: they may hold task params).
    public var name: String {
        guard let first = lengths.first else { return "" }
        return String(decoding: bytes[0..<first], as: UTF8.self)
    }

    public var description: String { name }
}
