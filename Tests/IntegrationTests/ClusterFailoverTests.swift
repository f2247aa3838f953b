import ConveyorAgent
import ConveyorCoordinator
import ConveyorCore
import ConveyorEmbedded
import ConveyorRedis
import ConveyorTesting
import Foundation
import Synchronization
import Testing

/// What a Redis Cluster does to a running stack: a slot moved, a primary killed, a shard emptied. Each
/// test has a cluster of its own (3 primaries, a replica each); tasks must all succeed, none lost.
@Suite("Conveyor through a Redis Cluster's migrations and failures")
struct ClusterFailoverTests {
    /// Three queues, one on each primary of a fresh cluster (slots 5718, 3728, 12682).
    static let queues = ["default", "emails", "billing"]
    static let registry = TaskTypeRegistry(queues.map { TaskTypeDefinition(name: "work-\($0)", queue: $0, handler: "noop") })

    private func start(agents: Int = 2, configure: (inout CoordinatorConfiguration) -> Void = { _ in }) async throws -> (Stack, LocalRedisCluster) {
        let environment = try await TestServers.shared.environment(name: "failover", ownRedisCluster: true)
        let stack = try await Stack.start(registry: Self.registry, agents: agents, environment: environment) { configuration in
            configuration.reconcileInterval = .milliseconds(500)
            configure(&configuration)
        }
        return (stack, try #require(environment.redisCluster))
    }

    /// Whether the submitters should stop, and how many batches were refused meanwhile.
    private final class Flow: Sendable {
        let stopped = Atomic(false)
        let refused = Atomic(0)
    }

    /// Submits batches of `size` tasks to `queue` every 20 ms until the flow stops; returns the ids
    /// accepted. A batch refused while the cluster changes (503) is counted, not retried: only accepted
    /// tasks are promised.
    private func submit(_ flow: Flow, stack: Stack, queue: String, size: Int = 20) async -> [Int64] {
        var ids: [Int64] = []
        let body = "{\"tasks\":[" + Array(repeating: "{\"type\":\"work-\(queue)\"}", count: size).joined(separator: ",") + "]}"
        while !flow.stopped.load(ordering: .relaxed) {
            if let reply = try? await stack.post("/v1/tasks/batch", body, timeout: .seconds(10)), reply.status == 201,
                let tasks = reply.json?["tasks"]?.arrayValue
            {
                ids += tasks.compactMap { $0["id"]?.intValue }
            } else {
                flow.refused.add(1, ordering: .relaxed)
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return ids
    }

    @Test("tasks flowing while their queue's slot moves to another primary all succeed: ASK during the move, MOVED after it, none lost")
    func slotMigrationWhileTasksFlow() async throws {
        let (stack, cluster) = try await start()
        let slot = HashSlot.of("emails")
        let source = try await cluster.shard(ofSlot: slot)[0]
        let target = try #require(try await cluster.primaryPorts().first { $0 != source })
        let flow = Flow()
        async let flowing = submit(flow, stack: stack, queue: "emails")
        async let elsewhere = submit(flow, stack: stack, queue: "billing")
        try await Task.sleep(for: .milliseconds(500))
        try await cluster.migrate(slot: slot, to: target) { try await Task.sleep(for: .milliseconds(500)) }
        try await Task.sleep(for: .milliseconds(500))
        flow.stopped.store(true, ordering: .relaxed)
        let ids = await flowing + elsewhere
        #expect(try await cluster.shard(ofSlot: slot)[0] == target)
        let statuses = try await stack.waitUntilTerminal(ids, timeout: .seconds(120))
        #expect(statuses.values.filter { $0 == .succeeded }.count == ids.count, "every accepted task succeeded")
        let followed = (stack.coordinator.redis as? RedisClusterClient)?.statistics
        #expect((followed?.moved ?? 0) + (followed?.asked ?? 0) >= 1, "the coordinator was redirected, and followed")
        print("slot migration under load: \(ids.count) tasks accepted, \(flow.refused.load(ordering: .relaxed)) batches refused; coordinator: MOVED \(followed?.moved ?? 0), ASK \(followed?.asked ?? 0), retried \(followed?.retried ?? 0), map reads \(followed?.mapReads ?? 0)")
        try await stack.stop()
        await cluster.stop()
    }

    @Test("a primary SIGKILLed under load: its replica is promoted, submissions to its queue are accepted again, and every accepted task succeeds")
    func primaryKilledUnderLoad() async throws {
        let (stack, cluster) = try await start()
        let shard = try await cluster.shard(ofSlot: HashSlot.of("emails"))
        let flow = Flow()
        async let flowing = submit(flow, stack: stack, queue: "emails")
        async let elsewhere = submit(flow, stack: stack, queue: "default")
        try await Task.sleep(for: .seconds(1))
        let killed = ContinuousClock.now
        cluster.kill(port: shard[0])
        // Until the replica is promoted, submissions to that queue get 503; then they are accepted again.
        var acceptedAgain: Duration?
        while acceptedAgain == nil, ContinuousClock.now - killed < .seconds(60) {
            if let reply = try? await stack.post("/v1/tasks", #"{"type":"work-emails"}"#, timeout: .seconds(10)), reply.status == 201 {
                acceptedAgain = ContinuousClock.now - killed
            } else {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        try await Task.sleep(for: .seconds(1))
        flow.stopped.store(true, ordering: .relaxed)
        let ids = await flowing + elsewhere
        #expect(acceptedAgain != nil)
        #expect(try await cluster.shard(ofSlot: HashSlot.of("emails"))[0] != shard[0], "a replica took over")
        let statuses = try await stack.waitUntilTerminal(ids, timeout: .seconds(180))
        #expect(statuses.values.filter { $0 == .succeeded }.count == ids.count, "every accepted task succeeded")
        print("primary SIGKILL: submissions accepted again after \(acceptedAgain.map { "\($0)" } ?? "never") (node timeout \(LocalRedisCluster.nodeTimeout)); \(ids.count) tasks accepted, all succeeded; \(flow.refused.load(ordering: .relaxed)) batches refused meanwhile")
        try await stack.stop()
        await cluster.stop()
    }

    @Test("a whole shard restarted without its data: the Reconciler sees its queues' new epoch and dispatches their unfinished tasks again from PostgreSQL")
    func shardRestartedEmpty() async throws {
        let (stack, cluster) = try await start(agents: 0)
        var lost: [Int64] = []
        var kept: [Int64] = []
        for _ in 0..<100 {
            lost.append(try await stack.submit("work-emails"))
            kept.append(try await stack.submit("work-default"))
        }
        let shard = try await cluster.shard(ofSlot: HashSlot.of("emails"))
        #expect(!shard.isEmpty && cluster.nodes.count == 6)
        let redis = RedisClusterClient(configuration: stack.environment.redis, logger: TestServers.quietLogger)
        defer { redis.close() }
        let keys = stack.environment.keys
        #expect(try await redis.send(RedisCommand("XLEN", [keys.ready("emails")])).integer == 100)
        // The Reconciler's first pass gave the queue its epoch; the emptied shard will lose it.
        var epoch: String?
        for _ in 0..<100 where epoch == nil {
            epoch = try await redis.send(RedisCommand("GET", [keys.epoch("emails")])).string
            if epoch == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        let before = try #require(epoch)
        for port in shard { cluster.kill(port: port) }
        for port in shard { try await cluster.restart(port: port, keepingData: false) }
        try await cluster.waitUntilHealthy(timeout: .seconds(60))
        // The shard came back empty: the Reconciler (every 500 ms) gives the queue a new epoch and
        // dispatches its tasks again. (The probe's connection broke with the shard: it may need a retry.)
        var after: String?
        for _ in 0..<100 where after == nil || after == before {
            after = try? await redis.send(RedisCommand("GET", [keys.epoch("emails")])).string
            if after == nil || after == before { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(after != nil && after != before, "the emptied shard's queue has a new epoch")
        let agent = try stack.startAgent(id: "after-loss", registry: Self.registry, handlers: .builtIns)
        let statuses = try await stack.waitUntilTerminal(lost + kept, timeout: .seconds(120))
        #expect(statuses.values.filter { $0 == .succeeded }.count == 200, "the emptied shard's tasks ran too")
        try await agent.stop()
        try await stack.stop()
        await cluster.stop()
    }
}
