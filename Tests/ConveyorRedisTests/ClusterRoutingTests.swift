import ConveyorCore
import ConveyorRedis
import Testing

@Suite("Redis Cluster: slots, routes, the slot map and redirects (no I/O)")
struct ClusterRoutingTests {
    @Test("a key's slot is CRC16/XMODEM mod 16,384 of its hash tag when it has one, as the cluster specification gives")
    func hashSlots() {
        // The specification's test vector and slots redis-cli reports (CLUSTER KEYSLOT).
        #expect(HashSlot.of("123456789") == 0x31C3 & 0x3FFF)
        #expect(HashSlot.of("foo") == 12182)
        #expect(HashSlot.of("bar") == 5061)
        #expect(HashSlot.of("{user1000}.following") == HashSlot.of("{user1000}.followers"))
        #expect(HashSlot.of("{user1000}.following") == HashSlot.of("user1000"))
        // An empty tag does not count: the whole key is hashed.
        #expect(HashSlot.of("foo{}{bar}") == 8363, "CRC16 of the whole key (a bitwise CRC16/XMODEM gives 8363)")
        #expect(HashSlot.of("foo{}{bar}") != HashSlot.of("bar"))
        #expect(HashSlot.of("foo{{bar}}zap") == HashSlot.of("{bar"))
    }

    @Test("every key of a queue is in one slot")
    func queueKeysShareASlot() {
        let keys = RedisKeys()
        let all = keys.readyStreams("emails") + [
            keys.delayed("emails"), keys.dead("emails"), keys.deadIndex("emails"), keys.cancelled("emails"),
            keys.events("emails"), keys.paused("emails"), keys.pausedEntries("emails", type: "send"),
            keys.limit("emails", type: "send").running, keys.limit("emails", type: "send", key: "k").waiting,
            keys.waitingKeys("emails", type: "send"),
        ]
        #expect(Set(all.map(HashSlot.of)).count == 1)
        #expect(HashSlot.of(keys.ready("emails")) == HashSlot.of("emails"))
    }

    @Test("a command goes to its first key's slot: after STREAMS for XREADGROUP, the first key for EVALSHA, the key after the subcommand for XINFO")
    func routes() {
        let keys = RedisKeys()
        let slot = HashSlot.of("q")
        #expect(RedisCommand("XADD", [keys.ready("q"), "*", "a", "b"]).route == .slot(slot))
        #expect(RedisConnection.xreadgroup(group: "g", consumer: "c", streams: [keys.ready("q")], count: 5, block: .seconds(1)).route == .slot(slot))
        #expect(RedisCommand("EVALSHA", ["abc", "2", keys.delayed("q"), keys.ready("q"), "arg"]).route == .slot(slot))
        #expect(RedisCommand("EVALSHA", ["abc", "0", "arg"]).route == .anyPrimary)
        // A group or a consumer named "streams" is not the keyword.
        #expect(RedisConnection.xreadgroup(group: "streams", consumer: "STREAMS", streams: [keys.ready("q")], count: 1, block: nil).route == .slot(slot))
        #expect(RedisCommand("SCAN", ["0", "MATCH", keys.limit("q", type: "*").waiting, "COUNT", "10"]).route == .slot(slot))
        #expect(RedisCommand("SCAN", ["0", "MATCH", "conveyor:{*}:ready"]).route == .anyPrimary)
        #expect(RedisCommand("XINFO", ["GROUPS", keys.ready("q")]).route == .slot(slot))
        #expect(RedisCommand("XGROUP", ["CREATE", keys.ready("q"), "agents", "0", "MKSTREAM"]).route == .slot(slot))
        #expect(RedisCommand("HSET", [keys.agents, "a", "b"]).route == .slot(HashSlot.of(keys.agents)))
        #expect(RedisCommand("SCRIPT", ["LOAD", "return 1"]).route == .everyPrimary)
        #expect(RedisCommand("PING").route == .anyPrimary)
        #expect(RedisCommand("CONFIG", ["GET", "appendonly"]).route == .anyPrimary)
    }

    @Test("CLUSTER SLOTS becomes a map of every slot to its primary; an empty host means the node that answered")
    func topologyFromClusterSlots() throws {
        func node(_ host: String, _ port: Int64) -> RedisReply { .array([.bulk(Array(host.utf8)), .integer(port), .bulk(Array("id".utf8))]) }
        let reply = RedisReply.array([
            .array([.integer(0), .integer(5460), node("10.0.0.1", 7000), node("10.0.0.4", 7003)]),
            .array([.integer(5461), .integer(10922), node("", 7001)]),
            .array([.integer(10923), .integer(16383), node("10.0.0.3", 7002)]),
        ])
        var topology = try ClusterTopology(clusterSlots: reply, answeredBy: RedisNodeAddress(host: "10.0.0.2", port: 7001))
        #expect(topology.primaries.count == 3)
        #expect(topology.owner(of: 0) == RedisNodeAddress(host: "10.0.0.1", port: 7000))
        #expect(topology.owner(of: 5461) == RedisNodeAddress(host: "10.0.0.2", port: 7001))
        #expect(topology.owner(of: 16383) == RedisNodeAddress(host: "10.0.0.3", port: 7002))
        #expect(topology.uncoveredSlots == 0)
        topology.assign(slot: 0, to: RedisNodeAddress(host: "10.0.0.9", port: 7009))
        #expect(topology.owner(of: 0) == RedisNodeAddress(host: "10.0.0.9", port: 7009))
        #expect(topology.owner(of: 1) == RedisNodeAddress(host: "10.0.0.1", port: 7000))

        // NULL means the node that answered; "?" an endpoint it does not know (those slots wait for a
        // map from another node).
        let unknown = try ClusterTopology(clusterSlots: .array([
            .array([.integer(0), .integer(99), .array([.null, .integer(7005)])]),
            .array([.integer(100), .integer(199), node("?", 7006)]),
        ]), answeredBy: RedisNodeAddress(host: "10.0.0.5", port: 7005))
        #expect(unknown.owner(of: 0) == RedisNodeAddress(host: "10.0.0.5", port: 7005))
        #expect(unknown.owner(of: 150) == nil)

        let partial = try ClusterTopology(clusterSlots: .array([.array([.integer(0), .integer(99), node("h", 1)])]), answeredBy: RedisNodeAddress(host: "h", port: 1))
        #expect(partial.uncoveredSlots == HashSlot.count - 100)
        #expect(partial.owner(of: 100) == nil)
        #expect(throws: RedisError.self) { try ClusterTopology(clusterSlots: .error("ERR This instance has cluster support disabled"), answeredBy: RedisNodeAddress(host: "h", port: 1)) }
    }

    @Test("MOVED and ASK replies name the slot and the node; other errors are not redirects")
    func redirects() {
        let moved = ClusterRedirect(.error("MOVED 3999 127.0.0.1:6381"))
        #expect(moved?.kind == .moved && moved?.slot == 3999 && moved?.node == RedisNodeAddress(host: "127.0.0.1", port: 6381))
        let ask = ClusterRedirect(.error("ASK 3999 :6381"))
        #expect(ask?.kind == .ask && ask?.node.host == "" && ask?.node.port == 6381)
        #expect(ClusterRedirect(.error("ERR unknown command")) == nil)
        #expect(ClusterRedirect(.error("MOVED 99999 h:1")) == nil)
        #expect(ClusterRedirect(.status("OK")) == nil)
    }

    @Test("redis+cluster:// names the cluster's nodes, with credentials for all of them; database 0 only")
    func clusterURLs() throws {
        let cluster = try RedisConfiguration(url: "redis+cluster://app:pw@10.0.0.1:7000,10.0.0.2,cache.internal:7002")
        #expect(cluster.isCluster)
        #expect(cluster.clusterNodes == [
            RedisNodeAddress(host: "10.0.0.1", port: 7000), RedisNodeAddress(host: "10.0.0.2", port: 6379),
            RedisNodeAddress(host: "cache.internal", port: 7002),
        ])
        #expect(cluster.username == "app" && cluster.password == "pw")
        #expect(cluster.redactedURL == "redis+cluster://app:***@10.0.0.1:7000,10.0.0.2:6379,cache.internal:7002")
        let node = cluster.node(RedisNodeAddress(host: "10.0.0.2", port: 6379))
        #expect(!node.isCluster && node.host == "10.0.0.2" && node.password == "pw")
        #expect(try !RedisConfiguration(url: "redis://h:1/0").isCluster)
        for bad in ["redis+cluster://", "redis+cluster://h:1,,h:2", "redis+cluster://h:1/2", "redis+cluster://h:x"] {
            #expect(throws: ConfigurationError.self) { try RedisConfiguration(url: bad) }
        }
    }
}
