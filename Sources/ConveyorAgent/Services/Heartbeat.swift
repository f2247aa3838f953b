import ConveyorCore
import ConveyorObservability
import ConveyorRedis
import Foundation
import Logging
import ServiceLifecycle

/// Publishes this agent's liveness and load in the `conveyor:agents` hash every interval, so
/// `GET /status` can list live agents and in-flight work by type.
///
/// Wakes on its interval. Graceful shutdown: removes the agent's entry.
final class Heartbeat: Service, Sendable {
    private let redis: any RedisClient
    private let keys: RedisKeys
    private let configuration: AgentConfiguration
    private let executor: Executor
    private let logger: Logger
    private let startedAt = WallClock.nowMillis()

    private let clock: any Clock<Duration>

    init(
        redis: any RedisClient, keys: RedisKeys, configuration: AgentConfiguration, executor: Executor,
        clock: any Clock<Duration> = ContinuousClock(), logger: Logger
    ) {
        self.redis = redis
        self.keys = keys
        self.configuration = configuration
        self.executor = executor
        self.clock = clock
        self.logger = logger
    }

    func run() async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let host = ProcessInfo.processInfo.hostName
        let pid = ProcessInfo.processInfo.processIdentifier
        let (redis, keys, configuration, executor, startedAt) = (self.redis, self.keys, self.configuration, self.executor, self.startedAt)
        await PeriodicService(
            name: "heartbeat", interval: configuration.heartbeatInterval, clock: clock, logger: logger,
            onShutdown: { _ = try? await redis.send(RedisCommand("HDEL", [keys.agents, configuration.agentID])) }
        ) { _ in
            let now = WallClock.nowMillis()
            let beat = AgentHeartbeat(
                id: configuration.agentID, host: host, pid: pid, queues: configuration.servedQueues,
                concurrency: configuration.concurrency, inFlight: executor.inFlightByType, startedAt: startedAt,
                at: now, expiresAt: now + 3 * configuration.heartbeatInterval.milliseconds)
            let json = String(decoding: try encoder.encode(beat), as: UTF8.self)
            _ = try await redis.send(RedisCommand("HSET", [keys.agents, configuration.agentID, json]))
            return nil
        }.run()
    }
}
