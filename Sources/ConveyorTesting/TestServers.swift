import ConveyorCore
import ConveyorEmbedded
import ConveyorPostgres
import ConveyorRedis
import Foundation
import Logging

/// One real `redis-server` and one real PostgreSQL per test process, started on first use on free
/// loopback ports in temp folders, and stopped when the process exits. Tests never share state through
/// them: each asks for a ``TestEnvironment`` with its own key prefix and its own database.
public actor TestServers {
    public static let shared = TestServers()

    // Tasks, not values: the actor is reentrant across `await`, so concurrent first callers must share
    // one start instead of each starting a server of its own.
    private var redis: Task<LocalRedisServer, any Error>?
    private var postgres: Task<LocalPostgresServer, any Error>?
    private var redisCluster: Task<LocalRedisCluster, any Error>?
    private var counter = 0

    public static let quietLogger = Logger(label: "conveyor.test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A logger that prints warnings and errors (CONVEYOR_TEST_LOG_LEVEL overrides), for tests.
    public static func logger(_ label: String) -> Logger {
        var logger = Logger(label: label, factory: { StreamLogHandler.standardError(label: $0) })
        logger.logLevel = ProcessInfo.processInfo.environment["CONVEYOR_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        return logger
    }

    public func redisServer() async throws -> LocalRedisServer {
        if let redis { return try await redis.value }
        let start = Task {
            let server = try await LocalRedisServer.start(appendOnly: false, logger: Self.quietLogger)
            ExitCleanup.register(redisPID: server.pid, directory: server.directory)
            return server
        }
        redis = start
        return try await start.value
    }

    /// A Redis Cluster of 3 primaries with a replica each, shared like the single server.
    public func sharedRedisCluster() async throws -> LocalRedisCluster {
        if let redisCluster { return try await redisCluster.value }
        let start = Task {
            let cluster = try await LocalRedisCluster.start(primaries: 3, replicas: 1, logger: Self.quietLogger)
            ExitCleanup.register(cluster: cluster)
            return cluster
        }
        redisCluster = start
        return try await start.value
    }

    public func postgresServer() async throws -> LocalPostgresServer {
        if let postgres { return try await postgres.value }
        let start = Task {
            let server = try await LocalPostgresServer.start(durable: false, logger: Self.quietLogger)
            ExitCleanup.register(postgres: server)
            return server
        }
        postgres = start
        return try await start.value
    }

    /// A fresh environment: its own Redis key prefix and its own, migrated PostgreSQL database.
    ///
    /// - Parameters:
    ///   - ownRedis: a redis-server of its own (with AOF), for tests that kill or restart it.
    ///   - ownPostgres: a PostgreSQL server of its own, for tests that stop or restart it.
    /// How long the connection that creates a test's database may take to open.
    static let connectTimeout = Duration.seconds(20)

    /// - Parameter redisCluster: Redis is the shared Redis Cluster (``sharedRedisCluster()``) instead of
    ///   the single server; `redisServer` is then the single server still, which the test leaves alone.
    /// - Parameter ownRedisCluster: a Redis Cluster of its own (3 primaries, a replica each), for tests
    ///   that kill its nodes or move its slots.
    public func environment(
        name: String = "test", ownRedis: Bool = false, ownPostgres: Bool = false, redisCluster: Bool = false, ownRedisCluster: Bool = false
    ) async throws -> TestEnvironment {
        let redis: LocalRedisServer
        if ownRedis {
            redis = try await LocalRedisServer.start(appendOnly: true, logger: Self.quietLogger)
            ExitCleanup.register(redisPID: redis.pid, directory: redis.directory)
        } else {
            redis = try await redisServer()
        }
        let postgres: LocalPostgresServer
        if ownPostgres {
            postgres = try await LocalPostgresServer.start(durable: false, logger: Self.quietLogger)
            ExitCleanup.register(postgres: postgres)
        } else {
            postgres = try await postgresServer()
        }
        counter += 1
        let suffix = "\(counter)_\(UInt32.random(in: 0...UInt32.max))"
        let database = "t_\(suffix)"
        // The whole suite starts at once on two cores: dozens of CREATE DATABASE and new backends queue up,
        // so connecting may take longer than the 3 s a production process allows itself.
        let admin = PostgresConnection(url: "postgres://postgres@127.0.0.1:\(postgres.port)/postgres", name: "test-admin",
            connectTimeout: Self.connectTimeout, statementTimeout: .seconds(120), logger: Self.quietLogger)  // CREATE DATABASE queues behind the others
        defer { admin.close() }
        try await admin.withSession { session in
            try session.execute("CREATE DATABASE \(database)", name: "create test database")
        }
        // On the shared server a test's own connections get the same patience as the one that made its
        // database: at the suite's start dozens of backends open at once beside Redis Clusters and a
        // browser (a 3 s connect timed out for 7 tests in one fresh-clone run). A server of the test's
        // own keeps the production timeout: those tests freeze and stop it on purpose.
        var postgresConfiguration = try PostgresConfiguration(url: "postgres://postgres@127.0.0.1:\(postgres.port)/\(database)", poolSize: 2)
        if !ownPostgres { postgresConfiguration.connectTimeout = Self.connectTimeout }
        var cluster = redisCluster ? try await sharedRedisCluster() : nil
        if ownRedisCluster {
            let own = try await LocalRedisCluster.start(primaries: 3, replicas: 1, logger: Self.quietLogger)
            ExitCleanup.register(cluster: own)
            cluster = own
        }
        return TestEnvironment(
            redis: try RedisConfiguration(url: cluster?.url ?? redis.url),
            postgres: postgresConfiguration,
            keys: RedisKeys(prefix: "\(name)_\(suffix)"),
            redisServer: redis, postgresServer: postgres, redisCluster: cluster)
    }
}

/// What one test gets: where Redis and PostgreSQL are, and a key prefix no other test uses.
public struct TestEnvironment: Sendable {
    public var redis: RedisConfiguration
    public var postgres: PostgresConfiguration
    public var keys: RedisKeys
    public let redisServer: LocalRedisServer
    public let postgresServer: LocalPostgresServer
    /// The Redis Cluster `redis` names, when the environment runs on one.
    public var redisCluster: LocalRedisCluster? = nil
}

/// Stops the shared servers when the test process exits (Swift Testing has no global tear-down).
public enum ExitCleanup {
    nonisolated(unsafe) private static var commands: [String] = []
    private static let lock = NSLock()
    nonisolated(unsafe) private static var installed = false

    /// Stops a redis-server at exit (tests that restart their own server register each one).
    public static func register(redis: LocalRedisServer) {
        register(redisPID: redis.pid, directory: redis.directory)
    }

    static func register(redisPID: Int32, directory: String) {
        add("kill -KILL \(redisPID) 2>/dev/null; rm -rf '\(directory)'")
    }

    static func register(cluster: LocalRedisCluster) {
        for node in cluster.nodes {
            if let server = cluster.server(port: node.port) { register(redisPID: server.pid, directory: node.directory) }
        }
    }

    static func register(postgres: LocalPostgresServer) {
        add(postgres.stopCommand)
    }

    /// `commands` and `installed` are only touched under `lock`, and the atexit handler runs once, at
    /// exit, after the tests are done.
    private static func add(_ command: String) {
        lock.lock()
        defer { lock.unlock() }
        commands.append(command)
        if !installed {
            installed = true
            atexit {
                for command in ExitCleanup.commands.reversed() { _ = system(command) }
            }
        }
    }
}
