import ConveyorRedis
import Foundation
import Logging
import Synchronization

/// A throwaway Redis Cluster on loopback ports: `primaries` shards of one primary and `replicas`
/// replicas each, every node a `redis-server --cluster-enabled yes` in its own temp folder, joined by
/// `redis-cli --cluster create`. For `conveyor dev --redis-cluster`, the load generator and the tests;
/// not for production.
public final class LocalRedisCluster: Sendable {
    /// One node: where it listens and where it keeps its files (nodes.conf, the AOF).
    public struct Node: Sendable, Hashable {
        public var port: Int
        public var busPort: Int
        public var directory: String
        public var address: RedisNodeAddress { RedisNodeAddress(host: "127.0.0.1", port: port) }
    }

    public let nodes: [Node]
    private let appendOnly: Bool
    private let logger: Logger
    /// The running server of each node, by port; a killed node is absent until restarted.
    private let servers: Mutex<[Int: LocalRedisServer]>

    /// The URL naming every node: `redis+cluster://127.0.0.1:port,…`.
    public var url: String { "redis+cluster://" + nodes.map { "127.0.0.1:\($0.port)" }.joined(separator: ",") }

    /// How long a primary may be unreachable before its replica takes over: short, so that failover tests
    /// take seconds (Redis' default is 15 s).
    public static let nodeTimeout = Duration.milliseconds(2000)

    public static func start(primaries: Int = 3, replicas: Int = 1, appendOnly: Bool = false, logger: Logger) async throws -> LocalRedisCluster {
        guard primaries >= 3, replicas >= 0 else { throw LocalServerError("a Redis Cluster needs at least 3 primaries") }
        guard let redisCLI = LocalProcess.find(["redis-cli", "/usr/bin/redis-cli"]) else {
            throw LocalServerError("redis-cli not found: install it with `apt-get install -y redis-tools`")
        }
        var nodes: [Node] = []
        var taken: Set<Int> = []
        for _ in 0..<(primaries * (1 + replicas)) {
            var ports: [Int] = []
            while ports.count < 2 {
                let port = try LocalProcess.freePort()
                if taken.insert(port).inserted { ports.append(port) }
            }
            let directory = try await LocalProcess.makeDirectory(prefix: "conveyor-redis-cluster", ownedByPostgres: false)
            nodes.append(Node(port: ports[0], busPort: ports[1], directory: directory))
        }
        let cluster = LocalRedisCluster(nodes: nodes, appendOnly: appendOnly, logger: logger)
        do {
            for node in nodes { try await cluster.startNode(node) }
            let create = try await LocalProcess.run(redisCLI, ["--cluster", "create"] + nodes.map { "127.0.0.1:\($0.port)" } + [
                "--cluster-replicas", String(replicas), "--cluster-yes",
            ])
            guard create.status == 0 else { throw LocalServerError("redis-cli --cluster create failed: \(create.output)") }
            try await cluster.waitUntilHealthy()
            return cluster
        } catch {
            await cluster.stop()
            throw error
        }
    }

    private init(nodes: [Node], appendOnly: Bool, logger: Logger) {
        self.nodes = nodes
        self.appendOnly = appendOnly
        self.logger = logger
        self.servers = Mutex([:])
    }

    private func startNode(_ node: Node) async throws {
        let server = try await LocalRedisServer.start(
            appendOnly: appendOnly, port: node.port, directory: node.directory,
            extraArguments: [
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", String(node.busPort),
                "--cluster-node-timeout", String(Self.nodeTimeout.milliseconds),
            ], logger: logger)
        servers.withLock { $0[node.port] = server }
    }

    /// Waits until every running node reports `cluster_state:ok`, knows every other node, every slot
    /// has a primary, and every replica's link to its primary is up.
    public func waitUntilHealthy(timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        var last = ""
        while ContinuousClock.now < deadline {
            let running = servers.withLock { Array($0.keys) }
            var healthy = true
            for port in running {
                let connection = Self.connect(port)
                defer { connection.close() }
                let replies = (try? await connection.send([RedisCommand("CLUSTER", ["INFO"]), RedisCommand("INFO", ["replication"])])) ?? []
                let info = replies.first?.string ?? ""
                let replication = replies.last?.string ?? ""
                // A replica that has not finished its first sync could not take over: wait for its link.
                if !info.contains("cluster_state:ok") || !info.contains("cluster_slots_assigned:16384")
                    || !info.contains("cluster_known_nodes:\(nodes.count)")
                    || (replication.contains("role:slave") && !replication.contains("master_link_status:up"))
                {
                    healthy = false
                    last = "127.0.0.1:\(port): " + info.split(separator: "\r\n").prefix(4).joined(separator: " ")
                    break
                }
            }
            if healthy { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw LocalServerError("the Redis Cluster did not become healthy within \(timeout): \(last)")
    }

    /// The ports of the nodes that are primaries now (it changes with a failover), as a running node
    /// sees it.
    public func primaryPorts() async throws -> [Int] {
        let running = servers.withLock { Array($0.keys) }.sorted()
        for port in running {
            let connection = Self.connect(port)
            defer { connection.close() }
            guard let text = (try? await connection.send(RedisCommand("CLUSTER", ["NODES"])))?.string else { continue }
            return text.split(separator: "\n").compactMap { line in
                let fields = line.split(separator: " ")
                guard fields.count >= 3, fields[2].contains("master"), !fields[2].contains("fail"),
                    let address = fields[1].split(separator: "@").first, let node = RedisNodeAddress(address)
                else { return nil }
                return node.port
            }.sorted()
        }
        throw LocalServerError("no cluster node answered CLUSTER NODES")
    }

    /// Moves a slot to another primary the way `redis-cli --cluster reshard` does, while clients keep
    /// using it: the target imports and the source migrates it (new keys go to the target, with ASK),
    /// its keys move in batches with MIGRATE, then every primary is told the target owns it (MOVED from
    /// then on). `between` runs after the slot is marked migrating and before the keys move.
    public func migrate(slot: Int, to target: Int, between: @Sendable () async throws -> Void = {}) async throws {
        func checked(_ connection: RedisConnection, _ command: RedisCommand) async throws -> RedisReply {
            let reply = try await connection.send(command)
            if let message = reply.errorMessage { throw LocalServerError("\(command.name) on a cluster node: \(message)") }
            return reply
        }
        let primaries = try await primaryPorts()
        let sourcePort = try await shard(ofSlot: slot)[0]
        guard primaries.contains(target), target != sourcePort else {
            throw LocalServerError("slot \(slot) cannot move from \(sourcePort) to \(target): not another primary")
        }
        let targetConnection = Self.connect(target)
        defer { targetConnection.close() }
        let source = Self.connect(sourcePort)
        defer { source.close() }
        let sourceID = try await checked(source, RedisCommand("CLUSTER", ["MYID"])).string ?? ""
        let targetID = try await checked(targetConnection, RedisCommand("CLUSTER", ["MYID"])).string ?? ""
        _ = try await checked(targetConnection, RedisCommand("CLUSTER", ["SETSLOT", String(slot), "IMPORTING", sourceID]))
        _ = try await checked(source, RedisCommand("CLUSTER", ["SETSLOT", String(slot), "MIGRATING", targetID]))
        try await between()
        while true {
            let names = try await checked(source, RedisCommand("CLUSTER", ["GETKEYSINSLOT", String(slot), "100"])).array ?? []
            if names.isEmpty { break }
            _ = try await checked(source, RedisCommand(
                "MIGRATE", ["127.0.0.1", String(target), "", "0", "5000", "KEYS"] + names.compactMap(\.string)))
        }
        for port in [target, sourcePort] + primaries.filter({ $0 != target && $0 != sourcePort }) {
            let connection = Self.connect(port)
            defer { connection.close() }
            _ = try await checked(connection, RedisCommand("CLUSTER", ["SETSLOT", String(slot), "NODE", targetID]))
        }
    }

    /// The ports of a shard: its primary's (first) and its replicas', as a running node sees them now.
    public func shard(ofSlot slot: Int) async throws -> [Int] {
        for port in servers.withLock({ Array($0.keys) }).sorted() {
            let connection = Self.connect(port)
            defer { connection.close() }
            guard let reply = try? await connection.send(RedisCommand("CLUSTER", ["SLOTS"])), let ranges = reply.array else { continue }
            for range in ranges {
                guard let fields = range.array, fields.count >= 3, let start = fields[0].integer, let end = fields[1].integer,
                    (start...end).contains(Int64(slot))
                else { continue }
                return fields[2...].compactMap { $0.array?[1].integer.map(Int.init) }
            }
        }
        throw LocalServerError("no running node knows who serves slot \(slot)")
    }

    /// A quiet connection to one node, for the cluster's own upkeep (refused connections are expected
    /// while nodes start or die).
    private static func connect(_ port: Int) -> RedisConnection {
        RedisConnection(
            configuration: RedisConfiguration(port: port), name: "redis-probe",
            logger: Logger(label: "conveyor.embedded", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    /// The running server of a node.
    public func server(port: Int) -> LocalRedisServer? { servers.withLock { $0[port] } }

    /// SIGKILLs a node (a primary's death: its replica takes over after ``nodeTimeout``).
    public func kill(port: Int) {
        let server = servers.withLock { $0.removeValue(forKey: port) }
        server?.kill()
    }

    /// Starts a killed node again where it was. Without `keepingData` its AOF and RDB are deleted first
    /// (its nodes.conf stays, so it comes back as the same node, empty).
    public func restart(port: Int, keepingData: Bool = true) async throws {
        guard let node = nodes.first(where: { $0.port == port }) else { throw LocalServerError("no node listens on \(port)") }
        if let running = servers.withLock({ $0.removeValue(forKey: port) }) { await running.stop(removeDirectory: false) }
        if !keepingData {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: node.directory)) ?? []
            for file in files where file != "nodes.conf" && !file.hasPrefix("redis.") {
                try? FileManager.default.removeItem(atPath: "\(node.directory)/\(file)")
            }
        }
        try await startNode(node)
    }

    /// Stops every node and removes their folders unless asked to keep them.
    public func stop(removeDirectory: Bool = true) async {
        let running = servers.withLock { state in
            defer { state = [:] }
            return Array(state.values)
        }
        for server in running { await server.stop(removeDirectory: false) }
        if removeDirectory {
            for node in nodes { try? FileManager.default.removeItem(atPath: node.directory) }
        }
    }
}
