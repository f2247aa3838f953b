import ConveyorEmbedded
import ConveyorPostgres
import Logging

/// A workflow a load accepted: its id and each node's task id by key.
struct AcceptedWorkflow: Sendable {
    var id: Int64
    var nodes: [String: Int64]
}

/// What became of a load's workflows, read back from PostgreSQL and the agents' journals: each must have
/// ended succeeded, its join queued by the join once, and no node started before all its dependencies'
/// successes were recorded.
struct WorkflowCheck: Sendable {
    var accepted = 0
    var statuses: [String: Int] = [:]
    /// Workflows still running (or missing) at the end: lost.
    var unfinished = 0
    /// Ended, but not succeeded.
    var wrong = 0
    /// Joins (the `join` node) the join decided other than once (their `queued` events by the workflow).
    var joinsNotQueuedOnce = 0
    /// Nodes whose first execution (the agents' journals) or first `running` event came before a
    /// dependency's success was recorded, or that ran with a dependency that never succeeded.
    var startedEarly = 0
    var nodes = 0

    var passed: Bool { unfinished == 0 && wrong == 0 && joinsNotQueuedOnce == 0 && startedEarly == 0 }

    private static let logger = Logger(label: "conveyor.load", factory: { _ in SwiftLogNoOpLogHandler() })

    /// How many of `ids` are still running.
    static func running(url: String, ids: [Int64]) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        let connection = PostgresConnection(url: url, name: "load-workflows", logger: logger)
        defer { connection.close() }
        return try await connection.withSession { session in
            try session.query(
                "SELECT count(*) FROM workflows WHERE id = ANY($1::bigint[]) AND status = 'running'",
                [PostgresArrayLiteral.integers(ids)]).rows.first?[0].flatMap { Int($0) } ?? -1
        }
    }

    static func make(
        url: String, accepted: [AcceptedWorkflow], dependencies: [String: [String]], journalPaths: [String]
    ) async throws -> WorkflowCheck {
        var check = WorkflowCheck()
        check.accepted = accepted.count
        let nodeIDs = accepted.flatMap { $0.nodes.values }
        check.nodes = nodeIDs.count
        let connection = PostgresConnection(url: url, name: "load-workflows", logger: logger)
        defer { connection.close() }
        let (workflowRows, succeededRows, runningRows, queuedRows) = try await connection.withSession { session in
            let nodes = PostgresArrayLiteral.integers(nodeIDs)
            let workflows = try session.query(
                "SELECT id, status FROM workflows WHERE id = ANY($1::bigint[])", [PostgresArrayLiteral.integers(accepted.map(\.id))]).rows
            let succeeded = try session.query("""
                SELECT task_id, min((extract(epoch FROM at) * 1000)::bigint) FROM task_events
                WHERE task_id = ANY($1::bigint[]) AND status = 'succeeded' GROUP BY task_id
                """, [nodes]).rows
            let running = try session.query("""
                SELECT task_id, min((extract(epoch FROM at) * 1000)::bigint) FROM task_events
                WHERE task_id = ANY($1::bigint[]) AND status = 'running' GROUP BY task_id
                """, [nodes]).rows
            let queued = try session.query("""
                SELECT task_id, count(*) FROM task_events
                WHERE task_id = ANY($1::bigint[]) AND status = 'queued' AND agent = 'workflow' GROUP BY task_id
                """, [PostgresArrayLiteral.integers(accepted.compactMap { $0.nodes["join"] })]).rows
            return (workflows, succeeded, running, queued)
        }
        func values(_ rows: [[String?]]) -> [Int64: Int64] {
            var out: [Int64: Int64] = [:]
            for row in rows { if let id = row[0].flatMap({ Int64($0) }), let value = row[1].flatMap({ Int64($0) }) { out[id] = value } }
            return out
        }
        let succeeded = values(succeededRows)
        let running = values(runningRows)
        let queued = values(queuedRows)
        var status: [Int64: String] = [:]
        for row in workflowRows { if let id = row[0].flatMap({ Int64($0) }), let value = row[1] { status[id] = value } }
        var firstExecution: [Int64: Int64] = [:]
        for path in journalPaths {
            for execution in ExecutionJournalFile.executions(path: path) {
                firstExecution[execution.task] = min(firstExecution[execution.task] ?? .max, execution.atMillis)
            }
        }
        for workflow in accepted {
            let value = status[workflow.id] ?? "missing"
            check.statuses[value, default: 0] += 1
            if value == "running" || value == "missing" { check.unfinished += 1 } else if value != "succeeded" { check.wrong += 1 }
            if let join = workflow.nodes["join"], queued[join] != 1 { check.joinsNotQueuedOnce += 1 }
            for (key, parents) in dependencies where !parents.isEmpty {
                guard let node = workflow.nodes[key],
                    let start = [firstExecution[node], running[node]].compactMap({ $0 }).min()
                else { continue }
                let successes = parents.compactMap { workflow.nodes[$0].flatMap { succeeded[$0] } }
                if successes.count < parents.count || start < successes.max()! { check.startedEarly += 1 }
            }
        }
        return check
    }
}
