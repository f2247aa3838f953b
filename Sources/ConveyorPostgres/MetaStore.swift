/// Small shared facts in `conveyor_meta`.
public struct MetaStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// The values of `keys` that exist, each with how long ago it was written by PostgreSQL's clock (so
    /// coordinators on hosts whose clocks disagree read the same age).
    public func entries(_ keys: [String]) async throws -> [String: (value: String, age: Duration)] {
        try await client.withSession { session in
            var entries: [String: (value: String, age: Duration)] = [:]
            for row in try session.query("""
                SELECT key, value, (extract(epoch FROM now() - updated_at) * 1000)::bigint
                FROM conveyor_meta WHERE key = ANY($1::text[])
                """, [PostgresArrayLiteral.text(keys)], name: "read meta entries").rows {
                guard let key = row[0], let value = row[1], let ageMillis = row[2].flatMap({ Int64($0) }) else { continue }
                entries[key] = (value, .milliseconds(max(0, ageMillis)))
            }
            return entries
        }
    }

    public func set(_ key: String, to value: String) async throws {
        _ = try await client.withSession { session in
            try session.query("""
                INSERT INTO conveyor_meta (key, value) VALUES ($1, $2)
                ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
                """, [key, value], name: "write meta").affected
        }
    }
}
