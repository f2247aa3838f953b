import ConveyorPostgres
import ConveyorTesting
import Testing

@Suite("Transactions on a pooled PostgreSQL connection")
struct PostgresTransactionTests {
    @Test("a transaction whose settings are refused in BEGIN's own message leaves its connection usable")
    func refusedSettingsRollBack() async throws {
        let environment = try await TestServers.shared.environment(name: "postgres-transaction")
        let client = PostgresClient(configuration: environment.postgres, logger: TestServers.quietLogger)
        defer { client.close() }
        let answer = try await client.withSession { session in
            // BEGIN takes effect, then the SET LOCAL fails: without a ROLLBACK the session stays in an
            // aborted transaction and refuses every later statement (25P02).
            #expect(throws: PostgresError.self) {
                try session.transaction(settings: "SET LOCAL conveyor_no_such_setting = 1") { () throws(PostgresError) in }
            }
            return try session.query("SELECT 41 + 1").rows.first?[0]
        }
        #expect(answer == "42")
    }
}
