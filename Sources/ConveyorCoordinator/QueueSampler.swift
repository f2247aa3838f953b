import ConveyorCore
import ConveyorMetricNames
import ConveyorObservability
import ConveyorRedis
import Foundation
import Metrics

/// Reads the queue gauges from Redis at scrape time (``QueueState``, one pipeline): per queue the backlog
/// and the entries in flight, the delayed entries, the dead letters and the age of the oldest unrecorded
/// event (the Recorder's lag); per flow-controlled type its slots in use against its limit and what is
/// held back; and the agents whose heartbeat has not expired. Cheap: O(1) commands, no scans.
struct QueueSampler: Sendable {
    let redis: any RedisClient
    let keys: RedisKeys
    let registry: TaskTypeRegistry

    func sample() async {
        let reading = try? await QueueState.read(registry.queues, registry: registry, redis: redis, keys: keys)
        let heartbeats = try? await redis.send(RedisCommand("HVALS", [keys.agents]))
        guard let reading, let heartbeats else { return }
        let now = WallClock.nowMillis()
        var oldestEvent: Int64?
        for state in reading {
            let dimensions = [("queue", state.queue)]
            Gauge(label: MetricsCatalog.queueReady.name, dimensions: dimensions).record(state.totalBacklog + state.inFlight)
            Gauge(label: MetricsCatalog.queuePending.name, dimensions: dimensions).record(state.inFlight)
            Gauge(label: MetricsCatalog.queueDelayed.name, dimensions: dimensions).record(state.delayed)
            Gauge(label: MetricsCatalog.queueDead.name, dimensions: dimensions).record(state.dead)
            if let millis = state.oldestEventMillis { oldestEvent = min(oldestEvent ?? millis, millis) }
            for use in state.types where use.definition.isFlowControlled || !state.paused.isEmpty {
                let type = [("type", use.definition.name)]
                Gauge(label: MetricsCatalog.limitRunning.name, dimensions: type).record(use.running)
                if let limit = use.definition.maxConcurrent {
                    Gauge(label: MetricsCatalog.limitMax.name, dimensions: type).record(limit)
                    Gauge(label: MetricsCatalog.limitUtilisation.name, dimensions: type).record(Double(use.running) / Double(limit))
                }
                Gauge(label: MetricsCatalog.limitWaiting.name, dimensions: type + [("reason", "concurrency")]).record(use.waitingForSlot)
                Gauge(label: MetricsCatalog.limitWaiting.name, dimensions: type + [("reason", "paused")]).record(use.paused)
            }
        }
        Gauge(label: MetricsCatalog.recorderLag.name).record(Double(max(0, now - (oldestEvent ?? now))) / 1000)
        let live = (heartbeats.array ?? []).filter { reply in
            guard let text = reply.string, let heartbeat = try? JSONDecoder().decode(AgentHeartbeat.self, from: Data(text.utf8)) else { return false }
            return heartbeat.expiresAt > now
        }.count
        Gauge(label: MetricsCatalog.agentsLive.name).record(live)
    }
}
