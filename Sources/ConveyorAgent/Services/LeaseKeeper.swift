import ConveyorCore
import ConveyorObservability
import ConveyorRedis
import Logging
import ServiceLifecycle

/// Keeps the leases of the tasks this agent holds alive: every lease/3 of a task's type it resets the
/// entry's idle time (``Scripts/renewLeases``), so a long task is never taken over while its agent lives.
///
/// Wakes every tick (a sixth of the shortest lease served). Graceful shutdown: keeps renewing until the
/// Executor has finished, since it stops after it (it comes earlier in the service order).
final class LeaseKeeper: Service, Sendable {
    private let redis: any RedisClient
    private let executor: Executor
    private let agentID: String
    private let gate: FlowGate
    let tick: Duration
    private let clock: any Clock<Duration>
    private let logger: Logger
    /// Fired after every pass (tests wait on it).
    let passes = TestSignal<PeriodicService.PassOutcome>()

    init(
        redis: any RedisClient, executor: Executor, agentID: String, shortestLease: Duration, gate: FlowGate,
        clock: any Clock<Duration> = ContinuousClock(), logger: Logger
    ) {
        self.gate = gate
        self.redis = redis
        self.executor = executor
        self.agentID = agentID
        self.tick = Self.tick(shortestLease: shortestLease)
        self.clock = clock
        self.logger = logger
    }

    /// A sixth of the shortest lease, within 50 ms … 5 s: two ticks count a third of the lease, when a
    /// held lease is renewed (see ``Executor/leasesDue(after:)``).
    static func tick(shortestLease: Duration) -> Duration {
        min(max(shortestLease / 6, .milliseconds(50)), .seconds(5))
    }

    func run() async throws {
        await PeriodicService(name: "renewing leases", interval: tick, clock: clock, logger: logger, passes: passes) { sincePreviousPass in
            await self.renewDueLeases(after: sincePreviousPass)
            return nil
        }.run()
    }

    /// Renews the leases that have gone a third of their length unrenewed, counting `elapsed` more.
    func renewDueLeases(after elapsed: Duration) async {
        let due = executor.leasesDue(after: elapsed)
        guard !due.isEmpty else { return }
        let byStream = Dictionary(grouping: due, by: \.stream)
        let calls = byStream.keys.sorted().map { stream in
            ScriptCall(keys: [stream], arguments: [RedisKeys.agentsGroup, agentID] + byStream[stream]!.map(\.entryID))
        }
        // The cluster-wide slots of limited types are kept with the lease: same deadline, same pass; one
        // call per queue, so each touches one hash slot.
        var slotCalls: [String: ScriptCall] = [:]
        for delivery in due where gate.limitedTypes.contains(delivery.envelope.type) {
            for limit in gate.concurrencyLimits(of: delivery.envelope, queue: delivery.queue) {
                slotCalls[delivery.queue, default: ScriptCall(keys: [], arguments: [])].keys.append(limit.keys.running)
                slotCalls[delivery.queue]!.arguments += [
                    delivery.envelope.id.description, String(gate.registry.lease(of: delivery.envelope.type).milliseconds),
                ]
            }
        }
        let scripted = calls.map { (Scripts.renewLeases, $0) } + slotCalls.keys.sorted().map { (Scripts.renewSlots, slotCalls[$0]!) }
        do {
            let replies = try await redis.evaluate(scripted)
            for (call, reply) in zip(calls, replies) {
                let renewed = Set(reply.array?.compactMap(\.string) ?? [])
                for id in call.arguments.dropFirst(2) where !renewed.contains(id) {
                    logger.warning("lost the lease of a running task: another agent may run it too", metadata: ["entry": "\(id)"])
                }
            }
        } catch {
            logger.warning("renewing leases failed", metadata: [LogKeys.count: "\(due.count)", LogKeys.error: "\(error)"])
        }
    }
}
