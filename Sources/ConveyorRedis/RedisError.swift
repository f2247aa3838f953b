/// A failure talking to Redis: the connection could not be made or broke, or a reply was not what the
/// command promises. (A command-level `-ERR` reply is a ``RedisReply/error(_:)`` value instead.)
public struct RedisError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case connectionFailed, connectionLost, connectionClosed, unexpectedReply, commandFailed
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A connection could not be opened (refused, unreachable, authentication failed).
        public static let connectionFailed = Code(.connectionFailed)
        /// The connection broke while commands were in flight: they may or may not have run.
        public static let connectionLost = Code(.connectionLost)
        /// The client was closed by its owner.
        public static let connectionClosed = Code(.connectionClosed)
        /// A reply did not have the shape the command promises.
        public static let unexpectedReply = Code(.unexpectedReply)
        /// The server answered with an error reply.
        public static let commandFailed = Code(.commandFailed)

        public var description: String { base.rawValue }
    }

    public var code: Code
    public var message: String
    /// The command involved, when there is one.
    public var command: String?

    public init(_ code: Code, _ message: String, command: String? = nil) {
        self.code = code
        self.message = message
        self.command = command
    }

    /// True when the server may simply be unreachable right now (worth a retry with backoff).
    public var isUnavailable: Bool {
        code == .connectionFailed || code == .connectionLost
    }

    public var description: String {
        if let command { return "redis \(code) (\(command)): \(message)" }
        return "redis \(code): \(message)"
    }
}
