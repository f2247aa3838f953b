import ConveyorCore
import ConveyorEmbedded
import ConveyorRedis
import ConveyorTesting
import Foundation
import Testing

/// The cluster client against a real Redis Cluster: 3 primaries with a replica each, started by
/// `redis-cli --cluster create` on loopback ports.
@Suite("Redis Cluster client against a real cluster", .serialized)
struct RedisClusterClientTests {
    private func withCluster(_ body: (LocalRedisCluster, RedisClusterClient) async throws -> Void) async throws {
        let cluster = try await LocalRedisCluster.start(primaries: 3, replicas: 1, logger: TestServers.quietLogger)
        let client = RedisClusterClient(configuration: try RedisConfiguration(url: cluster.url), logger: TestServers.quietLogger)
        do {
            try await body(cluster, client)
        } catch {
            client.close()
            await cluster.stop()
            throw error
        }
        client.close()
        await cluster.stop()
    }

    /// A direct connection to one node, for what the test checks behind the client's back.
    private func direct(_ port: Int) -> RedisConnection {
        RedisConnection(configuration: RedisConfiguration(port: port), name: "redis-direct", logger: TestServers.quietLogger)
    }

    @Test("a batch over 200 queues is split over every primary, one pipeline each, and its replies come back in the batch's order")
    func batchesSplitPerPrimary() async throws {
        try await withCluster { cluster, client in
            let keys = RedisKeys()
            let queues = (0..<200).map { "q\($0)" }
            var batch: [RedisCommand] = []
            for round in 0..<3 {
                for queue in queues {
                    batch.append(RedisCommand("INCR", ["\(keys.prefix):{\(queue)}:n"]))
                    batch.append(RedisConnection.xadd(stream: keys.ready(queue), fields: [("round", String(round))]))
                }
            }
            let replies = try await client.send(batch)
            for (index, reply) in replies.enumerated() where index % 2 == 0 {
                #expect(reply.integer == Int64(index / (2 * queues.count) + 1), "INCR \(index) answered \(reply)")
            }
            #expect(replies.allSatisfy { $0.errorMessage == nil })
            // The slot the client computed is the one the server computes, and every primary holds keys.
            let topology = try await client.topology()
            #expect(topology.primaries.count == 3)
            let probe = direct(cluster.nodes[0].port)
            defer { probe.close() }
            for queue in queues.prefix(50) {
                let slot = try await probe.send(RedisCommand("CLUSTER", ["KEYSLOT", keys.ready(queue)])).integer
                #expect(slot == Int64(HashSlot.of(keys.ready(queue))))
            }
            for primary in topology.primaries {
                let size = try await client.connection(to: primary).send(RedisCommand("DBSIZE")).integer ?? 0
                #expect(size > 100, "\(primary) holds \(size) keys")
            }
        }
    }

    @Test("a script is loaded on every primary and runs in each queue's slot, again after SCRIPT FLUSH")
    func scriptsOnEveryShard() async throws {
        try await withCluster { _, client in
            let script = RedisScript(name: "add", source: "return redis.call('INCRBY', KEYS[1], ARGV[1])")
            let calls = (0..<60).map { ScriptCall(keys: ["conveyor:{s\($0)}:n"], arguments: [String($0)]) }
            #expect(try await client.evaluate(script, calls).map(\.integer) == (0..<60).map { Int64($0) })
            _ = try await client.send(RedisCommand("SCRIPT", ["FLUSH"]))
            #expect(try await client.evaluate(script, calls).map(\.integer) == (0..<60).map { Int64($0 * 2) })
        }
    }

    @Test("a slot migrated between primaries while a writer runs: ASK is followed during the move, MOVED after it, and no write is lost or doubled")
    func slotMigration() async throws {
        try await withCluster { cluster, client in
            let counter = "conveyor:{moving}:n"
            let slot = HashSlot.of(counter)
            _ = try await client.send(RedisCommand("SET", [counter, "0"]))
            let topology = try await client.topology()
            let source = try #require(topology.owner(of: slot))
            let target = try #require(topology.primaries.first { $0 != source })
            let sourceConnection = direct(source.port)
            let targetConnection = direct(target.port)
            defer {
                sourceConnection.close()
                targetConnection.close()
            }
            let sourceID = try #require(try await sourceConnection.send(RedisCommand("CLUSTER", ["MYID"])).string)
            let targetID = try #require(try await targetConnection.send(RedisCommand("CLUSTER", ["MYID"])).string)

            // A writer increments the counter through the client for the whole migration.
            let writer = Task {
                var seen: [Int64] = []
                while !Task.isCancelled {
                    if let value = try? await client.send(RedisCommand("INCR", [counter])).integer { seen.append(value) }
                }
                return seen
            }
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await targetConnection.send(RedisCommand("CLUSTER", ["SETSLOT", String(slot), "IMPORTING", sourceID])).errorMessage == nil)
            #expect(try await sourceConnection.send(RedisCommand("CLUSTER", ["SETSLOT", String(slot), "MIGRATING", targetID])).errorMessage == nil)
            // A key the source does not have yet goes to the target: an ASK.
            let fresh = "conveyor:{moving}:fresh"
            #expect(try await client.send(RedisCommand("SET", [fresh, "here"])).errorMessage == nil)
            #expect(client.statistics.asked >= 1)
            try await Task.sleep(for: .milliseconds(200))
            // Move the keys still on the source, then give the slot to the target on every primary.
            while true {
                let names = try await sourceConnection.send(RedisCommand("CLUSTER", ["GETKEYSINSLOT", String(slot), "100"])).array ?? []
                if names.isEmpty { break }
                let migrate = RedisCommand("MIGRATE", ["127.0.0.1", String(target.port), "", "0", "5000", "KEYS"] + names.compactMap(\.string))
                #expect(try await sourceConnection.send(migrate).errorMessage == nil)
            }
            try await Task.sleep(for: .milliseconds(200))
            for primary in topology.primaries {
                let connection = direct(primary.port)
                defer { connection.close() }
                #expect(try await connection.send(RedisCommand("CLUSTER", ["SETSLOT", String(slot), "NODE", targetID])).errorMessage == nil)
            }
            try await Task.sleep(for: .milliseconds(300))
            writer.cancel()
            let seen = await writer.value
            let final = try await client.send(RedisCommand("GET", [counter])).integer
            #expect(seen == Array(1...Int64(seen.count)), "every increment answered once, in order")
            #expect(final == Int64(seen.count), "none lost on the way")
            #expect(try await client.send(RedisCommand("GET", [fresh])).string == "here")
            #expect(try await client.topology().owner(of: slot) == target)
            let statistics = client.statistics
            #expect(statistics.moved >= 1 && statistics.mapReads >= 2)
            print("slot migration: \(seen.count) increments through it; MOVED \(statistics.moved), ASK \(statistics.asked), retried \(statistics.retried), map reads \(statistics.mapReads)")
        }
    }

    @Test("a primary killed with SIGKILL: its replica is promoted and the client follows it without a restart, keeping what was replicated")
    func failover() async throws {
        try await withCluster { cluster, client in
            let counter = "conveyor:{failing}:n"
            #expect(try await client.send(RedisCommand("INCRBY", [counter, "41"])).integer == 41)
            let owner = try #require(try await client.topology().owner(of: HashSlot.of(counter)))
            // WAIT on the connection that wrote: the replica has the write before the primary dies.
            #expect(try await client.connection(to: owner).send(RedisCommand("WAIT", ["1", "2000"])).integer == 1)
            let killed = ContinuousClock.now
            cluster.kill(port: owner.port)
            var value: Int64?
            while value == nil, ContinuousClock.now - killed < .seconds(30) {
                value = try? await client.send(RedisCommand("INCR", [counter])).integer
                if value == nil { try await Task.sleep(for: .milliseconds(50)) }
            }
            let took = ContinuousClock.now - killed
            #expect(value == 42)
            let promoted = try #require(try await client.topology().owner(of: HashSlot.of(counter)))
            #expect(promoted != owner)
            #expect(try await cluster.primaryPorts().contains(promoted.port))
            print("failover: writes accepted again \(took) after the primary's SIGKILL (node timeout \(LocalRedisCluster.nodeTimeout)); map reads \(client.statistics.mapReads)")
        }
    }
}
