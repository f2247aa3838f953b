import ConveyorCore
import ConveyorRedis

/// One queue as Redis holds it now: backlog and in-flight work per priority, delayed and dead entries,
/// what is paused, and each flow-controlled type's use of its limits. Read with O(1) commands in one
/// pipeline for all queues (`/status` and the metrics scrape share it).
struct QueueState: Sendable {
    var queue: String
    /// Entries not yet delivered to an agent, by priority.
    var backlog: [TaskPriority: Int64] = [:]
    var inFlight: Int64 = 0
    var delayed: Int64 = 0
    var dead: Int64 = 0
    /// `*` when the whole queue is paused, else the paused types.
    var paused: Set<String> = []
    /// The id time (Unix ms) of the oldest event not yet recorded, if any.
    var oldestEventMillis: Int64?
    var types: [TypeUse] = []

    var totalBacklog: Int64 { backlog.values.reduce(0, +) }

    /// A type's limits and how much of them is in use.
    struct TypeUse: Sendable {
        var definition: TaskTypeDefinition
        /// Attempts holding a slot of its cluster-wide concurrency limit (lapsed leases not counted).
        var running: Int64
        /// Taken entries waiting for a slot: the type's own list plus, with per-key limits, each key's.
        var waitingForSlot: Int64
        /// Entries parked by a pause of the type or its queue.
        var paused: Int64
        /// Limit keys with entries waiting for a key's slot.
        var keysWaiting: Int64
    }

    /// Reads every queue's state; `rateHeld` (entries in the delayed set waiting for a reserved rate start)
    /// is not told apart from retries there, which would take a scan.
    static func read(_ queues: [String], registry: TaskTypeRegistry, redis: any RedisClient, keys: RedisKeys) async throws -> [QueueState] {
        var commands: [RedisCommand] = []
        var layout: [(queue: String, types: [TaskTypeDefinition])] = []
        let now = WallClock.nowMillis()
        for queue in queues {
            for priority in TaskPriority.allCases {
                let stream = keys.ready(queue, priority: priority)
                commands.append(RedisCommand("XLEN", [stream]))
                commands.append(RedisCommand("XPENDING", [stream, RedisKeys.agentsGroup]))
                commands.append(RedisConnection.xinfoGroups(stream: stream))
            }
            commands.append(RedisCommand("ZCARD", [keys.delayed(queue)]))
            commands.append(RedisCommand("XLEN", [keys.dead(queue)]))
            commands.append(RedisCommand("HKEYS", [keys.paused(queue)]))
            commands.append(RedisCommand("XRANGE", [keys.events(queue), "-", "+", "COUNT", "1"]))
            let types = registry.types.values.filter { $0.queue == queue }.sorted { $0.name < $1.name }
            for type in types {
                let limit = keys.limit(queue, type: type.name)
                commands.append(RedisCommand("ZCOUNT", [limit.running, String(now), "+inf"]))
                commands.append(RedisCommand("LLEN", [limit.waiting]))
                commands.append(RedisCommand("LLEN", [keys.pausedEntries(queue, type: type.name)]))
                commands.append(RedisCommand("SCARD", [keys.waitingKeys(queue, type: type.name)]))
            }
            layout.append((queue, types))
        }
        let replies = try await redis.send(commands)
        if let message = replies.lazy.compactMap(\.errorMessage).first(where: { !$0.hasPrefix("NOGROUP") && !$0.hasPrefix("ERR no such key") }) {
            throw RedisError(.commandFailed, message, command: "queue state")
        }
        var states: [QueueState] = []
        var at = 0
        for (queue, types) in layout {
            var state = QueueState(queue: queue)
            for priority in TaskPriority.allCases {
                // XPENDING's summary: [count, first id, last id, consumers]; NOGROUP before the first task.
                let pending = replies[at + 1].array?.first?.integer ?? 0
                state.backlog[priority] = RedisConnection.backlog(length: replies[at], pending: pending, groups: replies[at + 2], group: RedisKeys.agentsGroup)
                state.inFlight += pending
                at += 3
            }
            state.delayed = replies[at].integer ?? 0
            state.dead = replies[at + 1].integer ?? 0
            state.paused = Set((replies[at + 2].array ?? []).compactMap(\.string))
            if let id = replies[at + 3].array?.first?.array?.first?.string, let millis = id.split(separator: "-").first.flatMap({ Int64($0) }) {
                state.oldestEventMillis = millis
            }
            at += 4
            for type in types {
                state.types.append(TypeUse(
                    definition: type, running: replies[at].integer ?? 0, waitingForSlot: replies[at + 1].integer ?? 0,
                    paused: replies[at + 2].integer ?? 0, keysWaiting: replies[at + 3].integer ?? 0))
                at += 4
            }
            states.append(state)
        }
        return states
    }
}
