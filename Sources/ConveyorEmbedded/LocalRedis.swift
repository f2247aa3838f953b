import Logging

/// A throwaway Redis for the embedded stack: one server, or a cluster.
public protocol LocalRedis: Sendable {
    /// The URL the coordinator and agents are given (`redis://…` or `redis+cluster://…`).
    var url: String { get }
    /// Stops it, and removes its folders unless asked to keep them (logs, data).
    func stop(removeDirectory: Bool) async
    /// Its running processes, named for a report (`redis`, or `redis-<port>` per cluster node).
    var processes: [(name: String, pid: Int32)] { get }
}

extension LocalRedis {
    /// Stops it and removes its folders.
    public func stop() async { await stop(removeDirectory: true) }
}

extension LocalRedisServer: LocalRedis {
    public var processes: [(name: String, pid: Int32)] { [("redis", pid)] }
}

extension LocalRedisCluster: LocalRedis {
    public var processes: [(name: String, pid: Int32)] {
        nodes.compactMap { node in server(port: node.port).map { ("redis-\(node.port)", $0.pid) } }
    }
}

public enum LocalRedisLauncher {
    /// One `redis-server`, or with `clusterPrimaries` a cluster of that many primaries with a replica
    /// each (AOF on every node when `appendOnly`).
    public static func start(clusterPrimaries: Int? = nil, appendOnly: Bool, logger: Logger) async throws -> any LocalRedis {
        if let clusterPrimaries {
            return try await LocalRedisCluster.start(primaries: clusterPrimaries, replicas: 1, appendOnly: appendOnly, logger: logger)
        }
        return try await LocalRedisServer.start(appendOnly: appendOnly, logger: logger)
    }
}
