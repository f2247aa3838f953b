import ConveyorPostgres
import ConveyorEmbedded
import Foundation
import Logging

/// What became of the accepted tasks, read back from PostgreSQL after the load.
struct Outcome: Sendable {
    /// Finished tasks counted together: how many succeeded and failed, their end-to-end latency and
    /// when the last one finished.
    struct Tally: Sendable {
        var succeeded = 0
        /// `failed`, `dead` or `cancelled`.
        var failed = 0
        /// Submission to final outcome, from the row's `created_at` and `finished_at`.
        var endToEnd = LatencyHistogram()
        /// When the last task finished, seconds after the load started.
        var lastFinishedSecond: Double = 0

        mutating func record(succeeded: Bool, latency: Double, finishedSecond: Double) {
            if succeeded { self.succeeded += 1 } else { failed += 1 }
            endToEnd.record(milliseconds: latency)
            lastFinishedSecond = max(lastFinishedSecond, finishedSecond)
        }
    }

    /// Every finished task.
    var total = Tally()
    /// The same, task type by task type: what each type of a mix kept (say, beside a limited one).
    var byType: [String: Tally] = [:]
    /// Accepted but not terminal when the wait ended (or missing from PostgreSQL, outside a generation
    /// retention dropped).
    var lost = 0
    /// Finished and then removed by retention: missing, with an id below every remaining generation's
    /// (retention drops a generation only once each of its tasks finished, keeping the others).
    var expired = 0
    /// Executions beyond one per attempt (at-least-once), from the agents' journal; nil without it.
    var duplicates: Int?
    /// Tasks reaching a terminal status in each second of the run (index 0 = the first second).
    var finishedPerSecond: [Int] = []
    /// The end-to-end P99 of the tasks finishing in each second, milliseconds.
    var endToEndP99PerSecond: [Double] = []

    /// One finished task, counted in the total and under its type.
    mutating func record(type: String, succeeded: Bool, latency: Double, finishedSecond: Double) {
        total.record(succeeded: succeeded, latency: latency, finishedSecond: finishedSecond)
        byType[type, default: Tally()].record(succeeded: succeeded, latency: latency, finishedSecond: finishedSecond)
    }
}

/// Waits until every accepted task is terminal in PostgreSQL (up to a bound), then reads each one's
/// timestamps. Ids are looked up in chunks, so a million-task run never builds one giant query.
enum OutcomeCheck {
    private static let chunk = 20_000
    private static let logger = Logger(label: "conveyor.load", factory: { _ in SwiftLogNoOpLogHandler() })

    static func check(
        postgresURL: String, ids: [Int64], startedAtMillis: Int64, settle: Duration, journalPaths: [String]?, progress: Bool
    ) async throws -> Outcome {
        let connection = PostgresConnection(url: postgresURL, name: "load-outcome", logger: logger)
        defer { connection.close() }
        var pending = ids
        var expired = Set<Int64>()
        var rows: [Row] = []
        rows.reserveCapacity(ids.count)
        let deadline = ContinuousClock.now + settle
        while true {
            let found = try await terminalRows(pending, connection: connection)
            rows.append(contentsOf: found)
            let done = Set(found.map(\.id))
            pending.removeAll { done.contains($0) }
            let gone = try await expiredIDs(pending, connection: connection)
            expired.formUnion(gone)
            pending.removeAll { gone.contains($0) }
            if pending.isEmpty || ContinuousClock.now >= deadline { break }
            if progress { print("waiting for \(pending.count) accepted tasks to finish…") }
            try await Task.sleep(for: .milliseconds(500))
        }

        var outcome = Outcome()
        outcome.lost = pending.count
        outcome.expired = expired.count
        var perSecond: [Int: LatencyHistogram] = [:]
        for row in rows {
            let latency = Double(row.finishedMillis - row.createdMillis)
            let second = max(0, Int((row.finishedMillis - startedAtMillis) / 1000))
            perSecond[second, default: LatencyHistogram()].record(milliseconds: latency)
            outcome.record(
                type: row.type, succeeded: row.status == "succeeded", latency: latency,
                finishedSecond: Double(row.finishedMillis - startedAtMillis) / 1000)
        }
        let seconds = (perSecond.keys.max() ?? -1) + 1
        outcome.finishedPerSecond = (0..<seconds).map { perSecond[$0]?.count ?? 0 }
        outcome.endToEndP99PerSecond = (0..<seconds).map { perSecond[$0]?.milliseconds(at: 99) ?? 0 }
        if let journalPaths {
            // An expired task's retry events went with it: its executions can no longer be explained.
            outcome.duplicates = try await duplicates(journalPaths: journalPaths, ids: Set(ids).subtracting(expired), connection: connection)
        }
        return outcome
    }

    private struct Row: Sendable {
        var id: Int64
        var status: String
        var type: String
        var createdMillis: Int64
        var finishedMillis: Int64
    }

    /// The ones among `ids` that retention removed: below the first id of every generation left, and
    /// not kept in the default partition.
    private static func expiredIDs(_ ids: [Int64], connection: PostgresConnection) async throws -> Set<Int64> {
        let bound = try await connection.withSession { session in
            try session.query("SELECT min(first_id) FROM conveyor_generations", name: "generation bound").rows.first?[0].flatMap { Int64($0) }
        }
        guard let bound else { return [] }
        let below = ids.filter { $0 < bound }
        guard !below.isEmpty else { return [] }
        var kept = Set<Int64>()
        for start in stride(from: 0, to: below.count, by: chunk) {
            let literal = PostgresArrayLiteral.integers(below[start..<min(start + chunk, below.count)])
            let rows = try await connection.withSession { session in
                try session.query("SELECT id FROM tasks WHERE id = ANY($1::bigint[])", [literal], name: "kept tasks").rows
            }
            kept.formUnion(rows.compactMap { $0[0].flatMap { Int64($0) } })
        }
        return Set(below).subtracting(kept)
    }

    /// The terminal ones among `ids`, with their timestamps.
    private static func terminalRows(_ ids: [Int64], connection: PostgresConnection) async throws -> [Row] {
        var result: [Row] = []
        for start in stride(from: 0, to: ids.count, by: chunk) {
            let literal = PostgresArrayLiteral.integers(ids[start..<min(start + chunk, ids.count)])
            let rows = try await connection.withSession { session in
                try session.query("""
                    SELECT id, status, (extract(epoch FROM created_at) * 1000)::bigint, (extract(epoch FROM finished_at) * 1000)::bigint, type
                    FROM tasks WHERE id = ANY($1::bigint[]) AND status IN ('succeeded', 'failed', 'dead', 'cancelled')
                    """, [literal], name: "load outcome").rows
            }
            for row in rows {
                guard let id = row[0].flatMap({ Int64($0) }), let status = row[1], let created = row[2].flatMap({ Int64($0) }) else { continue }
                result.append(Row(
                    id: id, status: status, type: row[4] ?? "", createdMillis: created, finishedMillis: row[3].flatMap { Int64($0) } ?? created))
            }
        }
        return result
    }

    /// Executions beyond what each task's attempts explain: an attempt run twice (a lease that expired
    /// under a live agent, a crash between running and acknowledging) counts once per extra run. A task
    /// retried after a failure has one legitimate execution per attempt, so retries are subtracted, read
    /// from its `retrying` events.
    private static func duplicates(journalPaths: [String], ids: Set<Int64>, connection: PostgresConnection) async throws -> Int {
        var executions: [Int64: Int] = [:]
        for path in journalPaths {
            executions.merge(ExecutionJournalFile.executionsPerTask(path: path), uniquingKeysWith: +)
        }
        let repeated = executions.filter { $0.value > 1 && ids.contains($0.key) }
        guard !repeated.isEmpty else { return 0 }
        let literal = PostgresArrayLiteral.integers(Array(repeated.keys))
        // The rows and their retries in one statement: a task whose generation retention dropped after
        // the check found it finished has lost its `retrying` events too, and is left out rather than
        // counted as run once per lost event.
        let rows = try await connection.withSession { session in
            try session.query("""
                SELECT t.id, (SELECT count(*) FROM task_events e WHERE e.task_id = t.id AND e.status = 'retrying')
                FROM tasks t WHERE t.id = ANY($1::bigint[])
                """, [literal], name: "load retries").rows
        }
        var retries: [Int64: Int] = [:]
        for row in rows {
            if let id = row[0].flatMap({ Int64($0) }), let count = row[1].flatMap({ Int($0) }) { retries[id] = count }
        }
        return repeated.reduce(0) { total, task in
            guard let retried = retries[task.key] else { return total }
            return total + max(0, task.value - 1 - retried)
        }
    }
}

