/// A PostgreSQL failure with the context needed to act on it: what kind, the SQLSTATE when the server
/// sent one, and which query (by name, never with its parameters).
public struct PostgresError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case connectionFailed, connectionLost, connectionClosed, queryFailed, unexpectedResult, timedOut
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A connection could not be opened.
        public static let connectionFailed = Code(.connectionFailed)
        /// The connection broke during a query: its transaction did not commit.
        public static let connectionLost = Code(.connectionLost)
        /// The client was closed by its owner.
        public static let connectionClosed = Code(.connectionClosed)
        /// The server rejected a statement (see ``PostgresError/sqlState``).
        public static let queryFailed = Code(.queryFailed)
        /// The server did not answer within the statement's deadline (frozen, or the network black-holed):
        /// the connection was dropped. Its transaction did not commit, unless the statement that timed out
        /// was the COMMIT itself, whose outcome is then unknown (as for ``connectionLost``).
        public static let timedOut = Code(.timedOut)
        /// A result did not have the expected shape.
        public static let unexpectedResult = Code(.unexpectedResult)

        public var description: String { base.rawValue }
    }

    public var code: Code
    public var message: String
    /// The five-character SQLSTATE, e.g. `23505` for a unique violation.
    public var sqlState: String?
    /// A short name of the statement, for logs.
    public var query: String?

    public init(_ code: Code, _ message: String, sqlState: String? = nil, query: String? = nil) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.query = query
    }

    /// True when PostgreSQL may simply be unreachable right now.
    public var isUnavailable: Bool {
        code == .connectionFailed || code == .connectionLost || code == .timedOut
            || sqlState.map { $0.hasPrefix("08") || $0 == "57P01" || $0 == "57P03" } == true
    }

    public var isUniqueViolation: Bool { sqlState == "23505" }

    /// True when a statement gave up waiting for a lock (`lock_timeout`, or `NOWAIT`).
    public var isLockNotAvailable: Bool { sqlState == "55P03" }

    /// True when the same statements may well succeed if run again: a deadlock or serialization failure
    /// (one of two transactions is chosen to fail) or a lock not available.
    public var isTransient: Bool {
        sqlState.map { ["40P01", "40001", "55P03"].contains($0) } == true
    }

    public var description: String {
        var text = "postgres \(code)"
        if let query { text += " (\(query))" }
        if let sqlState { text += " [\(sqlState)]" }
        return text + ": " + message
    }
}
