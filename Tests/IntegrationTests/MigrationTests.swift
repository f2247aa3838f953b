import ConveyorPostgres
import ConveyorTesting
import Testing

@Suite("Migrations")
struct MigrationTests {
    /// Every column of every table and every index in the public schema, as text.
    private func schema(_ client: PostgresClient) async throws -> [String] {
        try await client.withSession { session in
            let columns = try session.query("""
                SELECT table_name || '.' || column_name || ':' || data_type FROM information_schema.columns
                WHERE table_schema = 'public' ORDER BY 1
                """).rows.compactMap { $0[0] }
            let indexes = try session.query("SELECT indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1").rows.compactMap { $0[0] }
            return columns + indexes
        }
    }

    @Test("applying migrations twice changes nothing the second time")
    func idempotent() async throws {
        let environment = try await TestServers.shared.environment(name: "migrate")
        let client = PostgresClient(configuration: environment.postgres, logger: TestServers.quietLogger)
        defer { client.close() }
        let first = try await Migrator.migrate(client)
        #expect(first == Migrations.all.map(\.version))
        let before = try await schema(client)
        #expect(before.contains("tasks.status:text"))
        #expect(before.contains("task_events.event_id:text"))
        let second = try await Migrator.migrate(client)
        #expect(second.isEmpty)
        #expect(try await schema(client) == before)
        #expect(try await Migrator.appliedVersions(client) == Migrations.all.map(\.version))
    }

    @Test("two processes migrating at once apply each migration exactly once")
    func concurrentMigrators() async throws {
        let environment = try await TestServers.shared.environment(name: "migrate")
        let a = PostgresClient(configuration: environment.postgres, logger: TestServers.quietLogger)
        let b = PostgresClient(configuration: environment.postgres, logger: TestServers.quietLogger)
        defer { a.close(); b.close() }
        async let first = Migrator.migrate(a)
        async let second = Migrator.migrate(b)
        let (x, y) = try await (first, second)
        #expect((x + y).sorted() == Migrations.all.map(\.version))
    }

    @Test("the SQL progress function orders statuses exactly like TaskStatus.progress")
    func progressAgreesWithSwift() async throws {
        let environment = try await TestServers.shared.environment(name: "migrate")
        let client = PostgresClient(configuration: environment.postgres, logger: TestServers.quietLogger)
        defer { client.close() }
        try await Migrator.migrate(client)
        for status in TaskStatus.allCases {
            for attempt in 0...4 {
                let value = try await client.withSession { session in
                    try session.query("SELECT conveyor_progress($1, $2)", [status.rawValue, String(attempt)]).rows[0][0]
                }
                #expect(value == String(status.progress(attempt: attempt)), "\(status) attempt \(attempt)")
            }
        }
    }
}

import ConveyorCore
