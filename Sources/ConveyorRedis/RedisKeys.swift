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

    /// Stream of tasks ready to run.
    public func ready(_ queue: String) -> String { "\(prefix):{\(queue)}:ready" }
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
}
