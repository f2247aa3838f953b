import ConveyorCore

/// Where PostgreSQL is: a `postgres://user:password@host:port/database?…` URL, handed to libpq, which
/// understands the URI form (and its query parameters such as `sslmode`) natively.
public struct PostgresConfiguration: Sendable, Hashable {
    public var url: String
    /// Connections in the pool.
    public var poolSize: Int
    /// How long opening a connection may take (libpq `connect_timeout`, whole seconds, at least 2).
    public var connectTimeout: Duration = defaultConnectTimeout
    /// How long one statement may wait for an answer before its connection is dropped and the caller
    /// gets ``PostgresError/Code/timedOut`` (the server's own `statement_timeout` is a second less).
    public var statementTimeout: Duration = defaultStatementTimeout

    public static let defaultURL = "postgres://postgres@127.0.0.1:5432/conveyor"
    public static let defaultPoolSize = 4
    public static let defaultConnectTimeout = Duration.seconds(3)
    public static let defaultStatementTimeout = Duration.seconds(5)

    /// What libpq gets: the URL plus a connect timeout and TCP keepalives (a peer that vanished is
    /// noticed in about 25 s even while idle), unless the URL sets them itself.
    public static func connectionString(url: String, connectTimeout: Duration = defaultConnectTimeout) -> String {
        let seconds = max(2, Int((connectTimeout.milliseconds + 999) / 1000))
        let defaults = [
            ("connect_timeout", String(seconds)), ("keepalives", "1"), ("keepalives_idle", "10"),
            ("keepalives_interval", "5"), ("keepalives_count", "3"),
        ]
        let query = url.firstIndex(of: "?").map { url[url.index(after: $0)...] } ?? ""
        let present = Set(query.split(separator: "&").map { String($0.prefix { $0 != "=" }) })
        let added = defaults.filter { !present.contains($0.0) }.map { "\($0.0)=\($0.1)" }
        guard !added.isEmpty else { return url }
        return url + (url.contains("?") ? "&" : "?") + added.joined(separator: "&")
    }

    public init(url: String, poolSize: Int = defaultPoolSize, key: String = "CONVEYOR_POSTGRES_URL") throws(ConfigurationError) {
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
            throw ConfigurationError(key: key, "'\(Self.redact(url))' is not a postgres:// URL (expected postgres://user:password@host:port/database)")
        }
        let rest = url.drop { $0 != "/" }.dropFirst(2)
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        let hostPort = authority.split(separator: "@", omittingEmptySubsequences: false).last ?? ""
        if let colon = hostPort.lastIndex(of: ":"), !hostPort.hasSuffix("]") {
            let port = hostPort[hostPort.index(after: colon)...]
            guard let number = Int(port), (1...65535).contains(number) else {
                throw ConfigurationError(key: key, "port '\(port)' in \(Self.redact(url)) is not a port number")
            }
        }
        guard poolSize > 0 else { throw ConfigurationError(key: "CONVEYOR_POSTGRES_POOL_SIZE", "must be positive") }
        self.url = url
        self.poolSize = poolSize
    }

    /// The URL with the password replaced by `***`, safe to log.
    public var redactedURL: String { Self.redact(url) }

    static func redact(_ url: String) -> String {
        guard let scheme = url.range(of: "://") else { return url }
        let rest = url[scheme.upperBound...]
        guard let at = rest.firstIndex(of: "@") else { return url }
        let credentials = rest[..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return url }
        return String(url[..<scheme.upperBound]) + credentials[..<colon] + ":***" + rest[at...]
    }
}
