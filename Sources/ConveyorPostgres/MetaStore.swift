/// Small shared facts in `conveyor_meta`.
public struct MetaStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    public func value(_ key: String) async throws -> String? {
        try await client.withSession { session in
            try session.query("SELECT value FROM conveyor_meta WHERE key = $1", [key], name: "read meta").rows.first?[0]
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
