import ConveyorPostgres
import Logging

/// Reads the chaos run's tasks back from PostgreSQL.
enum TaskCensus {
    struct Row: Sendable {
        var id: Int64
        var status: String
        var attempts: Int
        var finishedAtMillis: Int64?
        /// The fraction of the task's last progress report, if it made one.
        var progressFraction: Double?
    }

    private static let logger = Logger(label: "conveyor.chaos", factory: { _ in SwiftLogNoOpLogHandler() })

    static func statusCounts(url: String, ids: [Int64]) async throws -> [String: Int] {
        let connection = PostgresConnection(url: url, name: "chaos-census", logger: logger)
        defer { connection.close() }
        let literal = PostgresArrayLiteral.integers(ids)
        let rows = try await connection.withSession { session in
            try session.query("SELECT status, count(*) FROM tasks WHERE id = ANY($1::bigint[]) GROUP BY status", [literal]).rows
        }
        var counts: [String: Int] = [:]
        for row in rows {
            if let status = row[0], let count = row[1].flatMap({ Int($0) }) { counts[status] = count }
        }
        return counts
    }

    /// Up to `limit` of `ids` whose rows are not terminal, one line each (id, type, status, attempts,
    /// dispatched, last change), for the log of a run whose tasks did not all finish.
    static func unfinishedLines(url: String, ids: [Int64], limit: Int = 20) async throws -> [String] {
        let connection = PostgresConnection(url: url, name: "chaos-census", logger: logger)
        defer { connection.close() }
        let literal = PostgresArrayLiteral.integers(ids)
        let rows = try await connection.withSession { session in
            try session.query("""
                SELECT id, type, status, attempts, dispatched, updated_at FROM tasks
                WHERE id = ANY($1::bigint[]) AND status NOT IN ('succeeded', 'failed', 'dead', 'cancelled', 'skipped')
                ORDER BY id LIMIT \(limit)
                """, [literal]).rows
        }
        return rows.map { row in row.map { $0 ?? "null" }.joined(separator: " ") }
    }

    /// The ticks (Unix ms) a periodic schedule enqueued, with each tick's task status.
    static func scheduleTicks(url: String, schedule: String) async throws -> [(tick: Int64, status: String)] {
        let connection = PostgresConnection(url: url, name: "chaos-census", logger: logger)
        defer { connection.close() }
        let rows = try await connection.withSession { session in
            try session.query(
                "SELECT idempotency_key, status FROM tasks WHERE idempotency_key LIKE $1", ["schedule:\(schedule):%"]).rows
        }
        return rows.compactMap { row in
            guard let tick = row[0].flatMap({ $0.split(separator: ":").last }).flatMap({ Int64($0) }), let status = row[1] else { return nil }
            return (tick, status)
        }.sorted { $0.tick < $1.tick }
    }

    static func rows(url: String, ids: [Int64]) async throws -> [Int64: Row] {
        let connection = PostgresConnection(url: url, name: "chaos-census", logger: logger)
        defer { connection.close() }
        let literal = PostgresArrayLiteral.integers(ids)
        let rows = try await connection.withSession { session in
            try session.query("""
                SELECT id, status, attempts, (extract(epoch FROM finished_at) * 1000)::bigint, (progress->>'fraction')::float8
                FROM tasks WHERE id = ANY($1::bigint[])
                """, [literal]).rows
        }
        var result: [Int64: Row] = [:]
        for row in rows {
            guard let id = row[0].flatMap({ Int64($0) }), let status = row[1], let attempts = row[2].flatMap({ Int($0) }) else { continue }
            result[id] = Row(
                id: id, status: status, attempts: attempts, finishedAtMillis: row[3].flatMap { Int64($0) },
                progressFraction: row[4].flatMap { Double($0) })
        }
        return result
    }
}
