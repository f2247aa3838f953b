import Logging

/// What the rest of Conveyor talks to: one Redis (``RedisConnection``) or a Redis Cluster
/// (``RedisClusterClient``). Both pipeline: a batch of commands is one round trip per node.
///
/// A blocking command (XREADGROUP … BLOCK) holds the connection it runs on: give blocking readers a
/// client of their own.
public protocol RedisClient: AnyObject, Sendable {
    var configuration: RedisConfiguration { get }

    /// Sends the commands as one pipeline (one per node of a cluster) and returns one reply per command,
    /// in order.
    func send(_ commands: [RedisCommand]) async throws -> [RedisReply]

    /// Stops the client after the requests already queued.
    func close()
}

extension RedisClient {
    public func send(_ command: RedisCommand) async throws -> RedisReply {
        try await send([command])[0]
    }
}

/// Makes the client a configuration names.
public enum RedisClients {
    /// A ``RedisClusterClient`` for a `redis+cluster://` configuration, else a ``RedisConnection``.
    /// - Parameter name: labels the connection's thread and metrics (`redis`, `redis-reader`, …).
    public static func make(_ configuration: RedisConfiguration, name: String = "redis", logger: Logger) -> any RedisClient {
        configuration.isCluster
            ? RedisClusterClient(configuration: configuration, name: name, logger: logger)
            : RedisConnection(configuration: configuration, name: name, logger: logger)
    }
}
