import ConveyorCore
import ConveyorMetricNames
import ConveyorObservability
import ConveyorRedis
import Logging
import Metrics
import ServiceLifecycle

/// Takes over tasks whose agent stopped renewing their lease (it crashed, hung or lost its network), and
/// dead-letters entries that keep coming back without ever finishing.
///
/// Each entry is judged against its own type's lease, not a global timer: XPENDING lists entries idle
/// longer than the shortest lease, their types are read, and only those idle past their own lease are
/// claimed, each with XCLAIM's own idle check so that two agents cannot both take one. An entry
/// delivered more often than its max_attempts is poison: it goes to the dead stream (status `dead`).
/// Entries deleted while pending are acknowledged. Claims never exceed the free slots.
///
/// A claimed entry of a limited type passes the ``FlowGate`` again (its task keeps the slot it held).
/// Each pass also reaps the cluster-wide concurrency limits of the served queues: slots whose lease
/// lapsed are freed and waiting entries moved into free slots.
///
/// Wakes every half of the shortest lease served (at most every 10 s). Graceful shutdown: stops.
final class Reclaimer: Service, Sendable {
    private let redis: any RedisClient
    private let keys: RedisKeys
    private let registry: TaskTypeRegistry
    private let queues: [String]
    private let agentID: String
    private let executor: Executor
    private let slots: SlotPool
    private let gate: FlowGate
    let interval: Duration
    private let shortestLease: Duration
    private let clock: any Clock<Duration>
    private let logger: Logger
    /// Fired after every pass (tests wait on it).
    let passes = TestSignal<PeriodicService.PassOutcome>()
    /// Fulfilled once the Consumer has taken back this agent's own pending entries.
    private let ownPendingResumed: Promise<Void>

    static let scanLimit = 500

    init(
        redis: any RedisClient, keys: RedisKeys, registry: TaskTypeRegistry, queues: [String], agentID: String, executor: Executor,
        slots: SlotPool, gate: FlowGate, ownPendingResumed: Promise<Void>, clock: any Clock<Duration> = ContinuousClock(), logger: Logger
    ) {
        self.gate = gate
        self.clock = clock
        self.ownPendingResumed = ownPendingResumed
        self.redis = redis
        self.keys = keys
        self.registry = registry
        self.queues = queues
        self.agentID = agentID
        self.executor = executor
        self.slots = slots
        let leases = registry.types.values.filter { queues.contains($0.queue) }.map(\.lease)
        self.shortestLease = leases.min() ?? TaskTypeDefinition.defaultLease
        self.interval = Self.interval(shortestLease: shortestLease)
        self.logger = logger
    }

    /// Half of the shortest lease served, within 100 ms … 10 s: an entry is taken over at most half a
    /// lease after it expired.
    static func interval(shortestLease: Duration) -> Duration {
        min(max(shortestLease / 2, .milliseconds(100)), .seconds(10))
    }

    func run() async throws {
        // Own pending entries first: what this agent claims becomes its own pending too, and the
        // Consumer's start-up re-read would hand it over a second time.
        try? await cancelWhenGracefulShutdown { try await self.ownPendingResumed.value }
        await PeriodicService(name: "reclaiming", interval: interval, clock: clock, logger: logger, passes: passes) { _ in
            try await self.reclaimOnce()
            return nil
        }.run()
    }

    /// One pass over every served queue; a queue that fails does not keep the others from their turn.
    func reclaimOnce() async throws {
        var failure: (any Error)?
        for queue in queues {
            do {
                for stream in keys.readyStreams(queue) { try await reclaim(queue, stream: stream) }
                if registry.types.values.contains(where: { $0.queue == queue && $0.isFlowControlled }) {
                    try await gate.reap(queue: queue, consumer: agentID)
                }
            } catch {
                failure = failure ?? error
            }
        }
        if let failure { throw failure }
    }

    /// One pass over one ready stream's pending entries.
    func reclaim(_ queue: String, stream: String) async throws {
        let pending = try await redis.send(RedisCommand("XPENDING", [
            stream, RedisKeys.agentsGroup, "IDLE", String(shortestLease.milliseconds), "-", "+", String(Self.scanLimit),
        ]))
        if let message = pending.errorMessage, message.hasPrefix("NOGROUP") { return }
        let candidates: [(id: String, idle: Int64, deliveries: Int64)] = (pending.array ?? []).compactMap { row in
            guard let parts = row.array, parts.count == 4, let id = parts[0].string, let owner = parts[1].string,
                let idle = parts[2].integer, let deliveries = parts[3].integer
            else { return nil }
            // Our own entries are renewed while we hold them; one we no longer hold is fair game.
            if owner == agentID && executor.holds(Delivery.Key(stream: stream, entryID: id)) { return nil }
            return (id, idle, deliveries)
        }
        guard !candidates.isEmpty else { return }
        let entries = try await redis.send(candidates.map { RedisCommand("XRANGE", [stream, $0.id, $0.id]) })
        var gone: [String] = []
        for (candidate, reply) in zip(candidates, entries) {
            guard let first = reply.array?.first, let fields = try? StreamEntry(reply: first).fields else {
                gone.append(candidate.id)
                continue
            }
            let envelope: TaskEnvelope
            do {
                envelope = try TaskEnvelope(fields: fields)
            } catch {
                try await deadLetter(queue, stream: stream, id: candidate.id, fields: fields, reason: "\(error)", event: nil)
                continue
            }
            let lease = registry.lease(of: envelope.type)
            guard candidate.idle >= lease.milliseconds else { continue }
            if candidate.deliveries > Int64(envelope.maxAttempts) {
                let reason = "delivered \(candidate.deliveries) times without finishing"
                try await deadLetter(queue, stream: stream, id: candidate.id, fields: fields, reason: reason, event: envelope)
                continue
            }
            // Within the read-ahead too: under a steady backlog the free slots stay below zero.
            guard slots.room > 0 else { continue }
            try await claim(queue, stream: stream, id: candidate.id, lease: lease)
        }
        if !gone.isEmpty {
            // Deleted while pending (finished and cleaned up elsewhere): drop them from the pending list.
            _ = try await redis.send(RedisConnection.xack(stream: stream, group: RedisKeys.agentsGroup, ids: gone))
        }
    }

    private func claim(_ queue: String, stream: String, id: String, lease: Duration) async throws {
        // XCLAIM re-checks the idle time atomically: if the owner renewed meanwhile, nothing is claimed.
        let reply = try await redis.send(RedisCommand("XCLAIM", [stream, RedisKeys.agentsGroup, agentID, String(lease.milliseconds), id]))
        guard let claimed = reply.array?.first, let fields = try? StreamEntry(reply: claimed).fields,
            let envelope = try? TaskEnvelope(fields: fields)
        else { return }
        Counter(label: MetricsCatalog.reclaims.name, dimensions: [("queue", queue)]).increment()
        logger.info("took over a task whose lease expired", metadata: [
            LogKeys.taskID: "\(envelope.id)", LogKeys.taskType: "\(envelope.type)", LogKeys.correlationID: "\(envelope.correlationID)",
        ])
        let delivery = Delivery(queue: queue, stream: stream, entryID: id, envelope: envelope)
        let inspection = try await gate.inspect([delivery])
        try await Consumer.start([delivery], inspection: inspection, gate: gate, slots: slots, executor: executor, reclaimed: true)
    }

    private func deadLetter(_ queue: String, stream: String, id: String, fields: [String: String], reason: String, event envelope: TaskEnvelope?) async throws {
        let entry = PoisonEntry(queue: queue, stream: stream, entryID: id, fields: fields, reason: reason, envelope: envelope)
        if try await !PoisonEntry.deadLetter([entry], redis: redis, keys: keys, agentID: agentID).isEmpty {
            logger.error("dead-lettered a poison entry", metadata: [LogKeys.queue: "\(queue)", "entry": "\(id)", LogKeys.error: "\(reason)"])
        }
    }
}
