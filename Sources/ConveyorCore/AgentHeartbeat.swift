/// What an agent publishes in the `conveyor:agents` hash every heartbeat interval, and what
/// `GET /status` reads back. An agent whose `expires_at` has passed is not live.
public struct AgentHeartbeat: Codable, Sendable, Hashable {
    public var id: String
    public var host: String
    public var pid: Int32
    public var queues: [String]
    public var concurrency: Int
    /// Tasks running (or waiting for their type's slot) by type.
    public var inFlight: [String: Int]
    public var startedAt: Int64
    public var at: Int64
    /// Unix ms after which, without a newer heartbeat, the agent counts as gone.
    public var expiresAt: Int64

    public init(id: String, host: String, pid: Int32, queues: [String], concurrency: Int, inFlight: [String: Int], startedAt: Int64, at: Int64, expiresAt: Int64) {
        self.id = id
        self.host = host
        self.pid = pid
        self.queues = queues
        self.concurrency = concurrency
        self.inFlight = inFlight
        self.startedAt = startedAt
        self.at = at
        self.expiresAt = expiresAt
    }

    enum CodingKeys: String, CodingKey {
        case id, host, pid, queues, concurrency, at
        case inFlight = "in_flight"
        case startedAt = "started_at"
        case expiresAt = "expires_at"
    }
}
