/// `conveyor_schedules`: the last tick each periodic schedule enqueued, so a restart (of one
/// coordinator or of all) neither repeats a tick nor forgets where it was.
public struct ScheduleStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// The last tick (Unix ms) of every schedule that has one.
    public func lastTicks() async throws -> [String: Int64] {
        try await client.withSession { session in
            var ticks: [String: Int64] = [:]
            for row in try session.query(
                "SELECT name, (extract(epoch FROM last_tick) * 1000)::bigint FROM conveyor_schedules", name: "schedule ticks"
            ).rows {
                if let name = row[0], let tick = row[1].flatMap({ Int64($0) }) { ticks[name] = tick }
            }
            return ticks
        }
    }

    /// Records that `name`'s ticks up to `tickMillis` are enqueued (never moves backwards), creating its
    /// row if needed.
    public func advance(_ name: String, to tickMillis: Int64) async throws {
        _ = try await client.withSession { session in
            try session.query("""
                INSERT INTO conveyor_schedules (name, last_tick) VALUES ($1, to_timestamp($2::bigint / 1000.0))
                ON CONFLICT (name) DO UPDATE SET last_tick = GREATEST(conveyor_schedules.last_tick, EXCLUDED.last_tick), updated_at = now()
                """, [name, String(tickMillis)], name: "advance schedule").affected
        }
    }
}
