import ConveyorCore
import ConveyorMetricNames
import ConveyorObservability
import ConveyorRedis
import Foundation
import Metrics

/// Reads the queue gauges from Redis at scrape time, in one pipeline: per queue the ready stream's
/// backlog (the agents group's lag) and the entries in flight (XPENDING), the delayed retries, the dead letters and the age of the
/// oldest unrecorded event (the Recorder's lag); and the agents whose heartbeat has not expired.
/// Cheap: O(1) commands per queue, no scans.
struct QueueSampler: Sendable {
    let redis: RedisConnection
    let keys: RedisKeys
    let queues: [String]

    func sample() async {
        var commands: [RedisCommand] = []
        for queue in queues {
            commands.append(RedisCommand("XLEN", [keys.ready(queue)]))
            commands.append(RedisCommand("XPENDING", [keys.ready(queue), RedisKeys.agentsGroup]))
            commands.append(RedisCommand("ZCARD", [keys.delayed(queue)]))
            commands.append(RedisCommand("XLEN", [keys.dead(queue)]))
            commands.append(RedisCommand("XRANGE", [keys.events(queue), "-", "+", "COUNT", "1"]))
            commands.append(RedisConnection.xinfoGroups(stream: keys.ready(queue)))
        }
        commands.append(RedisCommand("HVALS", [keys.agents]))
        guard let replies = try? await redis.send(commands) else { return }
        let now = WallClock.nowMillis()
        var oldestEvent: Int64?
        for (index, queue) in queues.enumerated() {
            let base = index * 6
            let dimensions = [("queue", queue)]
            // XPENDING's summary: [count, first id, last id, consumers]; NOGROUP before the first task.
            let pending = replies[base + 1].array?.first?.integer ?? 0
            let undelivered = RedisConnection.backlog(length: replies[base], pending: pending, groups: replies[base + 5], group: RedisKeys.agentsGroup)
            Gauge(label: MetricsCatalog.queueReady.name, dimensions: dimensions).record(undelivered + pending)
            Gauge(label: MetricsCatalog.queuePending.name, dimensions: dimensions).record(pending)
            Gauge(label: MetricsCatalog.queueDelayed.name, dimensions: dimensions).record(replies[base + 2].integer ?? 0)
            Gauge(label: MetricsCatalog.queueDead.name, dimensions: dimensions).record(replies[base + 3].integer ?? 0)
            if let id = replies[base + 4].array?.first?.array?.first?.string, let millis = id.split(separator: "-").first.flatMap({ Int64($0) }) {
                oldestEvent = min(oldestEvent ?? millis, millis)
            }
        }
        Gauge(label: MetricsCatalog.recorderLag.name).record(Double(max(0, now - (oldestEvent ?? now))) / 1000)
        let heartbeats = replies[replies.count - 1].array ?? []
        let live = heartbeats.filter { reply in
            guard let text = reply.string, let heartbeat = try? JSONDecoder().decode(AgentHeartbeat.self, from: Data(text.utf8)) else { return false }
            return heartbeat.expiresAt > now
        }.count
        Gauge(label: MetricsCatalog.agentsLive.name).record(live)
    }
}
