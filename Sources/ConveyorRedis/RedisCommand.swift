/// A command ready for hiredis' `redisAppendCommandArgv`: all arguments in one flat byte buffer plus
/// their lengths.
///
/// Why flat: a pipeline of thousands of XADDs would otherwise allocate one array per argument; here a
/// command is two allocations however many arguments it has, and hiredis reads the arguments in place.
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
        append(String(argument))
    }

    public mutating func append(bytes argument: [UInt8]) {
        bytes.append(contentsOf: argument)
        lengths.append(argument.count)
    }

    public var argumentCount: Int { lengths.count }

    /// The command's name, for error messages (arguments are left out: they may hold task params).
    public var name: String {
        guard let first = lengths.first else { return "" }
        return String(decoding: bytes[0..<first], as: UTF8.self)
    }

    public var description: String { name }
}
