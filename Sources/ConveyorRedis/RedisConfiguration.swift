import ConveyorCore

/// Where and how to reach Redis, parsed from a `redis://[user:password@]host:port/db` URL, or a Redis
/// Cluster's `redis+cluster://[user:password@]host:port,host:port…` (any of its nodes: the rest is
/// discovered).
public struct RedisConfiguration: Sendable, Hashable {
    public var host: String
    public var port: Int
    /// The nodes a cluster client asks for the cluster's map; empty for a single Redis.
    public var clusterNodes: [RedisNodeAddress] = []
    public var username: String?
    public var password: String?
    public var database: Int
    public var connectTimeout: Duration
    /// How long one round trip may wait for its replies (beyond a blocking read's own BLOCK time) before
    /// the connection is dropped and its callers get ``RedisError/Code/timedOut``.
    public var commandTimeout: Duration

    public static let defaultURL = "redis://127.0.0.1:6379/0"
    /// Three seconds: a healthy Redis answers a pipeline of thousands of commands in milliseconds, and a
    /// submission waiting on a frozen one should get its 503 within a few seconds.
    public static let defaultCommandTimeout = Duration.seconds(3)

    public init(
        host: String = "127.0.0.1", port: Int = 6379, username: String? = nil, password: String? = nil,
        database: Int = 0, connectTimeout: Duration = .seconds(2), commandTimeout: Duration = defaultCommandTimeout
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
    }

    /// Whether this names a Redis Cluster.
    public var isCluster: Bool { !clusterNodes.isEmpty }

    /// The same settings for one node of the cluster.
    public func node(_ address: RedisNodeAddress) -> RedisConfiguration {
        var configuration = self
        configuration.host = address.host
        configuration.port = address.port
        configuration.clusterNodes = []
        return configuration
    }

    static let clusterScheme = "redis+cluster://"

    /// Parses `redis://[user:password@]host[:port][/db]`, or `redis+cluster://[user:password@]host[:port],…`
    /// (a cluster has database 0 only).
    /// - Parameter key: names the setting in the error message.
    public init(url: String, key: String = "CONVEYOR_REDIS_URL") throws(ConfigurationError) {
        if url.hasPrefix(Self.clusterScheme) {
            try self.init(clusterURL: url, key: key)
            return
        }
        let prefix = "redis://"
        guard url.hasPrefix(prefix) else {
            throw ConfigurationError(key: key, "'\(Self.redacted(url))' is not a redis:// or redis+cluster:// URL (expected redis://[user:password@]host:port/db)")
        }
        var rest = Substring(url.dropFirst(prefix.count))
        self.init()
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let user = String(credentials[..<colon])
                username = user.isEmpty ? nil : Self.percentDecoded(user)
                password = Self.percentDecoded(String(credentials[credentials.index(after: colon)...]))
            } else if !credentials.isEmpty {
                password = Self.percentDecoded(String(credentials))
            }
        }
        var hostPort = rest
        if let slash = rest.firstIndex(of: "/") {
            hostPort = rest[..<slash]
            let db = rest[rest.index(after: slash)...]
            if !db.isEmpty {
                guard let number = Int(db), number >= 0 else {
                    throw ConfigurationError(key: key, "database '\(db)' in \(Self.redacted(url)) is not a non-negative integer")
                }
                database = number
            }
        }
        if let colon = hostPort.lastIndex(of: ":") {
            let portText = hostPort[hostPort.index(after: colon)...]
            guard let number = Int(portText), (1...65535).contains(number) else {
                throw ConfigurationError(key: key, "port '\(portText)' in \(Self.redacted(url)) is not a port number")
            }
            port = number
            hostPort = hostPort[..<colon]
        }
        guard !hostPort.isEmpty else { throw ConfigurationError(key: key, "\(Self.redacted(url)) has no host") }
        host = String(hostPort)
    }

    private init(clusterURL url: String, key: String) throws(ConfigurationError) {
        // The node list has commas where a single URL has one host: read each node as a redis:// URL.
        var rest = Substring(url.dropFirst(Self.clusterScheme.count))
        var credentials = ""
        if let at = rest.lastIndex(of: "@") {
            credentials = String(rest[...at])
            rest = rest[rest.index(after: at)...]
        }
        var database = ""
        if let slash = rest.firstIndex(of: "/") {
            database = String(rest[slash...])
            rest = rest[..<slash]
        }
        guard database.isEmpty || database == "/" || database == "/0" else {
            throw ConfigurationError(key: key, "\(Self.redacted(url)): a Redis Cluster has database 0 only")
        }
        var nodes: [RedisConfiguration] = []
        for text in rest.split(separator: ",", omittingEmptySubsequences: false) {
            guard !text.isEmpty else { throw ConfigurationError(key: key, "\(Self.redacted(url)) has an empty node in its list") }
            nodes.append(try RedisConfiguration(url: "redis://\(credentials)\(text)", key: key))
        }
        self = nodes[0]
        clusterNodes = nodes.map { RedisNodeAddress(host: $0.host, port: $0.port) }
    }

    /// The URL with any password replaced by `***`, safe to log.
    public var redactedURL: String {
        let credentials: String
        switch (username, password) {
        case (let user?, _?): credentials = "\(user):***@"
        case (nil, _?): credentials = ":***@"
        default: credentials = ""
        }
        if isCluster { return Self.clusterScheme + credentials + clusterNodes.map(\.description).joined(separator: ",") }
        return "redis://\(credentials)\(host):\(port)/\(database)"
    }

    static func redacted(_ url: String) -> String {
        guard let at = url.lastIndex(of: "@"), let scheme = url.range(of: "://") else { return url }
        return String(url[..<scheme.upperBound]) + "***" + String(url[at...])
    }

    static func percentDecoded(_ text: String) -> String {
        text.removingPercentEncodingIfPossible()
    }
}

extension String {
    fileprivate func removingPercentEncodingIfPossible() -> String {
        var bytes: [UInt8] = []
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
