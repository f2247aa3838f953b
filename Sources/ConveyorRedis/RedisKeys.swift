import ConveyorCore

/// Every Redis key Conveyor uses, and nothing else builds key names.
///
/// `{queue}` is a hash tag: all keys of one queue land in one cluster slot, so a Lua script may touch
/// several of them.
public struct RedisKeys: Sendable, Hashable {
    public var prefix: String

    public static let defaultPrefix = "conveyor"
    /// The consumer group of agents on every ready stream.
    public static let agentsGroup = "agents"
    /// The consumer group of coordinators' Recorders on every events stream.
    public static let recordersGroup = "recorders"

    public init(prefix: String = defaultPrefix) {
        self.prefix = prefix
    }

    /// Stream of tasks of normal priority ready to run.
    public func ready(_ queue: String) -> String { "\(prefix):{\(queue)}:ready" }
    /// Stream of tasks of one priority ready to run (normal is ``ready(_:)`` itself, so a queue that never
    /// sees another priority has one stream, as before priorities existed).
    public func ready(_ queue: String, priority: TaskPriority) -> String {
        priority == .normal ? ready(queue) : "\(prefix):{\(queue)}:ready:\(priority.name)"
    }
    /// Every ready stream of a queue, highest priority first.
    public func readyStreams(_ queue: String) -> [String] {
        TaskPriority.allCases.reversed().map { ready(queue, priority: $0) }
    }
    /// Hash of what is paused in a queue: `*` (the whole queue) or a type name → paused since (Unix ms).
    public func paused(_ queue: String) -> String { "\(prefix):{\(queue)}:paused" }
    /// List of a paused type's entries that agents took and parked until it resumes, oldest first.
    public func pausedEntries(_ queue: String, type: String) -> String { "\(prefix):{\(queue)}:paused:\(type)" }
    /// Where one cluster-wide limit keeps its state: the type's own, or one limit key's within it.
    public func limit(_ queue: String, type: String, key: String? = nil) -> LimitKeys {
        let base = key.map { "\(prefix):{\(queue)}:limit:\(type):key:\($0)" } ?? "\(prefix):{\(queue)}:limit:\(type)"
        return LimitKeys(running: base + ":running", rate: base + ":rate", starts: base + ":starts", waiting: base + ":waiting")
    }
    /// Set of the limit keys of a type that have entries waiting for a slot (the reaper's list).
    public func waitingKeys(_ queue: String, type: String) -> String { "\(prefix):{\(queue)}:limit:\(type):waiting-keys" }
    /// Sorted set of tasks waiting for a retry, scored by due time.
    public func delayed(_ queue: String) -> String { "\(prefix):{\(queue)}:delayed" }
    /// Stream of dead-lettered tasks.
    public func dead(_ queue: String) -> String { "\(prefix):{\(queue)}:dead" }
    /// Hash of task id → its entry id in the dead stream, for redriving one task.
    public func deadIndex(_ queue: String) -> String { "\(prefix):{\(queue)}:dead-index" }
    /// Set of ids of cancelled tasks that agents have not dropped yet.
    public func cancelled(_ queue: String) -> String { "\(prefix):{\(queue)}:cancelled" }
    /// Stream of lifecycle events waiting to be recorded in PostgreSQL.
    public func events(_ queue: String) -> String { "\(prefix):{\(queue)}:events" }
    /// Hash of agent id → heartbeat.
    public var agents: String { "\(prefix):agents" }
    /// Changes whenever Redis lost its data; the Reconciler watches it.
    public var epoch: String { "\(prefix):epoch" }
    /// On a Redis Cluster, the epoch of one queue's slot: a shard that comes back empty loses the epochs
    /// of the queues it serves, and only those.
    public func epoch(_ queue: String) -> String { "\(prefix):{\(queue)}:epoch" }
}

/// The Redis keys of one cluster-wide limit, all in its queue's hash slot.
public struct LimitKeys: Sendable, Hashable {
    /// Sorted set: task id → the lease deadline of the attempt holding the slot (Redis time, ms).
    public var running: String
    /// String: the rate limit's reservations timeline (GCRA theoretical arrival time, ms); expires once past.
    public var rate: String
    /// String: the rate limit's starts timeline, which spaces entries released late (ms); expires once past.
    public var starts: String
    /// List: entries taken while every slot was held, oldest first; a freed slot moves one back.
    public var waiting: String
}
