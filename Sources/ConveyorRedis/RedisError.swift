/// A failure talking to Redis: the connection could not be made or broke, or a reply was not what the
/// command promises. (A command-level `-ERR` reply is a ``RedisReply/error(_:)`` value instead.)
public struct RedisError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case connectionFailed, connectionLost, connectionClosed, unexpectedReply, commandFailed, timedOut
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A connection could not be opened (refused, unreachable, authentication failed).
        public static let connectionFailed = Code(.connectionFailed)
        /// The connection broke while commands were in flight: they may or may not have run.
        public static let connectionLost = Code(.connectionLost)
        /// No reply within the command's deadline (a frozen server, a black-holed network): the connection
        /// was dropped, and the commands whose replies are missing may or may not have run.
        public static let timedOut = Code(.timedOut)
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
    /// Of a failed pipeline: how many commands had been answered before it broke (they ran; the rest
    /// may or may not have).
    public var answered: Int

    public init(_ code: Code, _ message: String, command: String? = nil, answered: Int = 0) {
        self.code = code
        self.message = message
        self.command = command
        self.answered = answered
    }

    /// True when the server may simply be unreachable right now (worth a retry with backoff).
    public var isUnavailable: Bool {
        code == .connectionFailed || code == .connectionLost || code == .timedOut
    }

    /// True when commands may have reached the server before the failure (so their effects may exist).
    public var mayHaveRun: Bool {
        code == .connectionLost || code == .timedOut || answered > 0
    }

    public var description: String {
        if let command { return "redis \(code) (\(command)): \(message)" }
        return "redis \(code): \(message)"
    }
}
