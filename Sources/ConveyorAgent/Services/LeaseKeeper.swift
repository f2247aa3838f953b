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
    private let redis: RedisConnection
    private let executor: Executor
    private let agentID: String
    private let tick: Duration
    private let logger: Logger

    init(redis: RedisConnection, executor: Executor, agentID: String, shortestLease: Duration, logger: Logger) {
        self.redis = redis
        self.executor = executor
        self.agentID = agentID
        self.tick = min(max(shortestLease / 6, .milliseconds(50)), .seconds(5))
        self.logger = logger
    }

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await renewDueLeases()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.tick) }
        }
    }

    func renewDueLeases() async {
        let due = executor.leasesDue(at: .now)
        guard !due.isEmpty else { return }
        let byStream = Dictionary(grouping: due, by: \.stream)
        let calls = byStream.keys.sorted().map { stream in
            ScriptCall(keys: [stream], arguments: [RedisKeys.agentsGroup, agentID] + byStream[stream]!.map(\.entryID))
        }
        do {
            let replies = try await redis.evaluate(Scripts.renewLeases, calls)
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
