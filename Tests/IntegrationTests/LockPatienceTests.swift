@testable import ConveyorPostgres
import ConveyorTesting
import Testing

/// ``LockPatience`` against a real PostgreSQL: what it retries and what it does not. (An attempt that
/// gets its locks after others failed: RetentionTests, a drop behind a transaction holding `tasks`.)
@Suite("LockPatience against PostgreSQL")
struct LockPatienceIntegrationTests {
    /// A client of its own with one connection, so that a session-level lock taken in one call is
    /// still held by the next.
    private func client(_ environment: TestEnvironment, connections: Int = 1) -> PostgresClient {
        var configuration = environment.postgres
        configuration.poolSize = connections
        return PostgresClient(configuration: configuration, logger: TestServers.quietLogger)
    }

    @Test("a lock that stays taken fails every attempt: the last one's lock timeout is thrown after exactly as many attempts as waits, each rolled back")
    func exhaustedAttemptsThrowTheLockTimeout() async throws {
        let environment = try await TestServers.shared.environment(name: "patience")
        let holder = client(environment)
        let asker = client(environment)
        defer { holder.close(); asker.close() }
        try await holder.withSession { session in
            _ = try session.query("CREATE TABLE IF NOT EXISTS patience_exhausted (n int)")
            _ = try session.query("SELECT pg_advisory_lock(4242)")
        }
        let patience = LockPatience(waits: [.milliseconds(5), .milliseconds(5), .milliseconds(10)], pause: .zero)
        let (attempts, sqlState, leftOpen) = try await asker.withSession { session in
            var attempts = 0
            var sqlState: String?
            do {
                _ = try patience.run(on: session) { () throws(PostgresError) in
                    attempts += 1
                    _ = try session.query("INSERT INTO patience_exhausted VALUES (1)")
                    _ = try session.query("SELECT pg_advisory_xact_lock(4242)")
                }
            } catch let error as PostgresError {
                sqlState = error.sqlState
            }
            let count = try session.query("SELECT count(*) FROM patience_exhausted").rows.first?[0] ?? nil
            return (attempts, sqlState, count)
        }
        #expect(attempts == 3)
        #expect(sqlState == "55P03")
        #expect(leftOpen == "0", "every attempt rolled back whole")
        try await holder.withSession { session in _ = try session.query("SELECT pg_advisory_unlock(4242)") }
    }

    @Test("an error other than a lock timeout is thrown at once, not retried")
    func otherErrorsAreNotRetried() async throws {
        let environment = try await TestServers.shared.environment(name: "patience")
        let asker = client(environment)
        defer { asker.close() }
        let patience = LockPatience(waits: Array(repeating: .milliseconds(5), count: 5), pause: .zero)
        let (attempts, sqlState) = try await asker.withSession { session in
            var attempts = 0
            do {
                _ = try patience.run(on: session) { () throws(PostgresError) in
                    attempts += 1
                    _ = try session.query("SELECT 1 / 0")
                }
                return (attempts, String?.none)
            } catch let error as PostgresError {
                return (attempts, error.sqlState)
            }
        }
        #expect(attempts == 1)
        #expect(sqlState == "22012")
    }
}
