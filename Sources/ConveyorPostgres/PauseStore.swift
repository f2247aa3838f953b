/// `conveyor_pauses`: what operators paused, the record that survives every restart. Redis holds the
/// copy agents read (`conveyor:{q}:paused`); the coordinator writes here first, then there.
public struct PauseStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// One pause: a whole queue (`type` nil) or one type in it.
    public struct Pause: Sendable, Hashable {
        public var queue: String
        public var type: String?
        public var pausedAtMillis: Int64
        public var pausedBy: String?
    }

    public func all() async throws -> [Pause] {
        try await client.withSession { session in
            try session.query("""
                SELECT queue, type, (extract(epoch FROM paused_at) * 1000)::bigint, paused_by
                FROM conveyor_pauses ORDER BY queue, type
                """, name: "pauses").rows.compactMap { row in
                guard let queue = row[0], let type = row[1], let at = row[2].flatMap({ Int64($0) }) else { return nil }
                return Pause(queue: queue, type: type.isEmpty ? nil : type, pausedAtMillis: at, pausedBy: row[3])
            }
        }
    }

    /// Records a pause (a repeated one keeps its first time); returns it as stored.
    public func pause(queue: String, type: String?, by: String?) async throws -> Pause {
        try await client.withSession { session in
            let rows = try session.query("""
                INSERT INTO conveyor_pauses (queue, type, paused_by) VALUES ($1, $2, $3)
                ON CONFLICT (queue, type) DO UPDATE SET queue = EXCLUDED.queue
                RETURNING (extract(epoch FROM paused_at) * 1000)::bigint, paused_by
                """, [queue, type ?? "", by], name: "pause").rows
            let at = rows.first?[0].flatMap { Int64($0) } ?? 0
            return Pause(queue: queue, type: type, pausedAtMillis: at, pausedBy: rows.first?[1] ?? nil)
        }
    }

    /// Removes a pause; returns whether there was one.
    public func resume(queue: String, type: String?) async throws -> Bool {
        try await client.withSession { session in
            try session.query(
                "DELETE FROM conveyor_pauses WHERE queue = $1 AND type = $2", [queue, type ?? ""], name: "resume"
            ).affected > 0
        }
    }
}
