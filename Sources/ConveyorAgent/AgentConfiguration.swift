import ConveyorCore
import ConveyorRedis

/// Everything an agent process needs, validated once at start.
public struct AgentConfiguration: Sendable {
    /// Names this agent: its consumer name in every ready stream's group, its heartbeat key.
    public var agentID: String
    /// Most tasks running at once on this agent, all types together.
    public var concurrency: Int = 64
    /// Queues to serve; empty means every queue of the registry.
    public var queues: [String] = []
    public var registry: TaskTypeRegistry = .builtIn
    public var redis: RedisConfiguration
    public var keys: RedisKeys = RedisKeys()
    /// Port of the agent's HTTP endpoint (`/health`); nil for none.
    public var metricsPort: Int?
    public var metricsHost: String = "127.0.0.1"
    public var heartbeatInterval: Duration = .seconds(2)
    /// How long XREADGROUP waits for work before looping (bounds shutdown latency).
    public var readBlock: Duration = .seconds(1)
    /// Most completions acknowledged in one script call.
    public var completerBatchSize: Int = 2000
    /// How long the Completer waits after a batch that left nothing behind before it takes the next
    /// (``Linger``): at a light load one script call per linger instead of one per task; an outcome
    /// reaches Redis up to this much later. Zero flushes again at once.
    public var completerLinger: Duration = defaultCompleterLinger
    public static let defaultCompleterLinger = Duration.milliseconds(10)
    /// The longest ``completerLinger``: while it lasts, completions wait in a queue that holds four
    /// batches (8,000 by default), so 100 ms leaves room for 80,000 a second per agent, several times
    /// what one agent finishes at the ceiling.
    public static let longestCompleterLinger = Duration.milliseconds(100)
    /// Appends a line per attempt started to this file (a testing aid for counting duplicate runs).
    public var executionJournalPath: String?

    public init(agentID: String, redis: RedisConfiguration) {
        self.agentID = agentID
        self.redis = redis
    }

    /// The queues actually served.
    public var servedQueues: [String] { queues.isEmpty ? registry.queues : queues }

    public func validate() throws(ConfigurationError) {
        guard concurrency > 0, concurrency <= 100_000 else { throw ConfigurationError(key: "--concurrency", "must be 1–100000") }
        guard !agentID.isEmpty, TaskTypeRegistry.isValidName(agentID) else {
            throw ConfigurationError(key: "CONVEYOR_AGENT_ID", "'\(agentID)' must use letters, digits, '_', '-', '.' and ':'")
        }
        let known = Set(registry.queues)
        if let unknown = queues.first(where: { !known.contains($0) }) {
            throw ConfigurationError(key: "--queues", "no task type uses queue '\(unknown)' (known: \(registry.queues.joined(separator: ", ")))")
        }
        guard completerLinger >= .zero, completerLinger <= Self.longestCompleterLinger else {
            throw ConfigurationError(key: "CONVEYOR_COMPLETER_LINGER", "must be 0 to \(Self.longestCompleterLinger.milliseconds)ms")
        }
        if let metricsPort, !(0...65535).contains(metricsPort) {
            throw ConfigurationError(key: "--metrics-port", "must be 0–65535")
        }
    }
}
