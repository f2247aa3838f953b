import ConveyorCore

/// Where PostgreSQL is: a `postgres://user:password@host:port/database?…` URL, handed to libpq, which
/// understands the URI form (and its query parameters such as `sslmode`) natively.
public struct PostgresConfiguration: Sendable, Hashable {
    public var url: String
    /// Connections in the pool.
    public var poolSize: Int

    public static let defaultURL = "postgres://postgres@127.0.0.1:5432/conveyor"
    public static let defaultPoolSize = 4

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
