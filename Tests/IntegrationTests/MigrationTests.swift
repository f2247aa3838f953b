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

    @Test("migration 10 keys task_events by task: events recorded before it are kept, a replay still collides, an index built beforehand is used, and new generations get the same key")
    func eventsKeyedByTask() async throws {
        let environment = try await TestServers.shared.environment(name: "migrate")
        let client = PostgresClient(configuration: environment.postgres, logger: TestServers.quietLogger)
        defer { client.close() }
        try await Migrator.migrate(client, migrations: Migrations.all.filter { $0.version < 10 })
        let insert = """
            INSERT INTO task_events (event_id, task_id, status, attempt, agent, at)
            VALUES ('7-1-running', 7, 'running', 1, 'agent-1', now())
            """
        // The procedure for a large history (docs/operations.md): one partition indexed beforehand.
        let partition = try await client.withSession { session in
            _ = try session.query(insert)
            return try session.query(
                "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'task_events'::regclass ORDER BY 1 LIMIT 1").rows.first?[0] ?? nil
        }
        let prepared = try #require(partition)
        try await client.withSession { session in
            _ = try session.query("CREATE UNIQUE INDEX CONCURRENTLY \(prepared)_prepared ON \(prepared) (task_id, event_id)")
        }
        #expect(try await Migrator.migrate(client).first == 10)
        let preparedIndexes = try await client.withSession { session in
            try session.query("SELECT indexname FROM pg_indexes WHERE tablename = $1", [prepared]).rows.compactMap { $0[0] }
        }
        #expect(preparedIndexes == ["\(prepared)_prepared"], "attached, not built again beside it")
        let (kept, keys) = try await client.withSession { session in
            (try session.query("SELECT count(*) FROM task_events WHERE task_id = 7").rows[0][0],
             try session.query("SELECT indexdef FROM pg_indexes WHERE tablename = 'task_events'").rows.compactMap { $0[0] })
        }
        #expect(kept == "1")
        #expect(keys.count == 1 && keys[0].contains("UNIQUE") && keys[0].contains("(task_id, event_id)"), "\(keys)")
        await #expect(throws: PostgresError.self) {
            try await client.withSession { session in _ = try session.query(insert) }
        }
        let generations = GenerationStore(client: client)
        let next = try #require(try await generations.generations().last).number + 1
        #expect(try await generations.open(next))
        let newKeys = try await client.withSession { session in
            try session.query("SELECT indexdef FROM pg_indexes WHERE tablename = $1", ["task_events_g\(next)"]).rows.compactMap { $0[0] }
        }
        #expect(newKeys.count == 1 && newKeys[0].contains("(task_id, event_id)"), "\(newKeys)")
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
