import ConveyorCore

/// A workflow whose last node ended: what its metrics and log line need.
public struct FinishedWorkflow: Sendable, Hashable {
    public var id: WorkflowID
    public var name: String
    public var status: WorkflowStatus
    /// From submission to the end of its last node, in milliseconds.
    public var durationMillis: Int64
}

/// A node a workflow cancel stopped, and where its agent hears of it.
public struct CancelledNode: Sendable, Hashable {
    public var id: TaskID
    public var queue: String
    /// Whether it could be in Redis (it was queued, running or retrying): only those go into the
    /// queue's cancelled set (the agent that takes or runs the entry removes the mark; the RedisJanitor
    /// removes marks whose entry is gone).
    public var wasStarted: Bool
}

/// Why a workflow action was refused.
public enum WorkflowActionError: Error, Sendable, Hashable, CustomStringConvertible {
    case notFound(WorkflowID)
    /// The action needs another status (cancel: running; retry: failed or cancelled).
    case wrongStatus(WorkflowID, WorkflowStatus)
    /// It ended so long ago that retention is about to drop its nodes.
    case expiring(WorkflowID)

    public var description: String {
        switch self {
        case .notFound(let id): "no workflow with id \(id)"
        case .wrongStatus(let id, let status): "workflow \(id) is \(status.rawValue)"
        case .expiring(let id): "workflow \(id) ended too long ago: retention is about to remove it (CONVEYOR_RETENTION)"
        }
    }
}

extension WorkflowStore {
    static let terminalStatuses = "('succeeded', 'failed', 'dead', 'cancelled', 'skipped')"

    /// Ends each of `workflows` whose nodes have all ended, with its outcome: failed if a node failed or
    /// died (itself or by a dependency), else cancelled if one was cancelled, else succeeded.
    ///
    /// Called after the transaction that ended a node has committed, never inside it: the last node's
    /// end is then visible to whichever of two concurrent recorders commits second, and no workflow row
    /// is locked across a batch. A crash in between is covered by ``runningWorkflows(after:limit:)``
    /// (the WorkflowSweeper). The check looks for an unfinished node from the newest id down: in
    /// dependency order the last nodes end last, so a running workflow answers at the first row.
    public func finishIfEnded(_ workflows: Set<WorkflowID>) async throws -> [FinishedWorkflow] {
        guard !workflows.isEmpty else { return [] }
        let literal = PostgresArrayLiteral.integers(workflows.map(\.rawValue))
        return try await client.withSession { session in
            try session.transaction { () throws(PostgresError) -> [FinishedWorkflow] in
                // Locked first, in id order, and checked in the next statement (a snapshot taken after
                // the lock): a redrive that re-opens one of them meanwhile (it locks the row too) is
                // either seen, or waits and then sets it running again.
                _ = try session.query(
                    "SELECT id FROM workflows WHERE id = ANY($1::bigint[]) AND status = 'running' ORDER BY id FOR UPDATE",
                    [literal], name: "lock ended workflows")
                return try session.query("""
                    WITH ended AS (
                        SELECT w.id FROM workflows w
                        WHERE w.id = ANY($1::bigint[]) AND w.status = 'running'
                          AND (SELECT u.id FROM tasks u WHERE u.workflow_id = w.id AND u.status NOT IN \(Self.terminalStatuses)
                               ORDER BY u.id DESC LIMIT 1) IS NULL
                    ), outcome AS (
                        -- A workflow whose nodes are gone altogether (retention) has failed: it cannot succeed.
                        SELECT e.id,
                               CASE WHEN count(t.id) = 0 OR bool_or(t.status IN ('failed', 'dead')) THEN 'failed'
                                    WHEN bool_or(t.status = 'cancelled') THEN 'cancelled' ELSE 'succeeded' END AS status,
                               max(t.finished_at) AS finished_at
                        FROM ended e LEFT JOIN tasks t ON t.workflow_id = e.id GROUP BY e.id
                    )
                    UPDATE workflows w SET status = o.status, finished_at = coalesce(o.finished_at, now()), updated_at = now()
                    FROM outcome o WHERE w.id = o.id AND w.status = 'running'
                    RETURNING w.id, w.name, w.status, (extract(epoch FROM w.finished_at - w.created_at) * 1000)::bigint
                    """, [literal], name: "finish workflows"
                ).rows.compactMap(Self.finished)
            }
        }
    }

    static func finished(_ row: [String?]) -> FinishedWorkflow? {
        guard let id = row[0].flatMap({ WorkflowID($0) }), let status = row[2].flatMap(WorkflowStatus.init(rawValue:)) else { return nil }
        return FinishedWorkflow(id: id, name: row[1] ?? "", status: status, durationMillis: max(0, row[3].flatMap { Int64($0) } ?? 0))
    }

    /// A page of the ids of running workflows after `afterID`, and where the next page starts.
    public func runningWorkflows(after afterID: WorkflowID?, limit: Int) async throws -> (ids: [WorkflowID], next: WorkflowID?) {
        let ids = try await client.withSession { session in
            try session.query(
                "SELECT id FROM workflows WHERE status = 'running' AND id > $1 ORDER BY id LIMIT $2",
                [String(afterID?.rawValue ?? 0), String(limit)], name: "running workflows"
            ).rows.compactMap { $0[0].flatMap { WorkflowID($0) } }
        }
        return (ids, ids.count == limit ? ids.last : nil)
    }

    /// The nodes of a running workflow that have not ended and their queues: read before a cancel, so
    /// their queues' cancelled sets hear of it before the rows say `cancelled` (as for a task).
    public func unfinishedNodes(of id: WorkflowID) async throws -> [CancelledNode] {
        try await client.withSession { session in
            guard let status = try session.query("SELECT status FROM workflows WHERE id = $1", [id.description], name: "workflow status")
                .rows.first?[0].flatMap(WorkflowStatus.init(rawValue:))
            else { throw WorkflowActionError.notFound(id) }
            guard status == .running else { throw WorkflowActionError.wrongStatus(id, status) }
            return try session.query(
                "SELECT id, queue, status FROM tasks WHERE workflow_id = $1 AND status NOT IN \(Self.terminalStatuses)",
                [id.description], name: "unfinished nodes"
            ).rows.compactMap(Self.cancelledNode)
        }
    }

    private static func cancelledNode(_ row: [String?]) -> CancelledNode? {
        guard let id = row[0].flatMap({ TaskID($0) }), let queue = row[1] else { return nil }
        return CancelledNode(id: id, queue: queue, wasStarted: row[2] != TaskStatus.waiting.rawValue)
    }

    /// Cancels every node of a running workflow that has not ended and ends the workflow `cancelled`, in
    /// one transaction; each node's history gets the cancel and its completion webhook is queued.
    /// Throws ``WorkflowActionError`` when there is no such workflow or it has ended.
    ///
    /// - Returns: the nodes it cancelled (a node queued by a join after ``unfinishedNodes(of:)`` was read
    ///   is among them, so the caller can tell its agent too), and the workflow as it ended.
    public func cancel(_ id: WorkflowID) async throws -> (nodes: [CancelledNode], workflow: FinishedWorkflow?) {
        try await client.withSession { session in
            try session.transaction { () throws(PostgresError) -> Result<(nodes: [CancelledNode], workflow: FinishedWorkflow?), WorkflowActionError> in
                switch try Self.lockedStatus(of: id, on: session) {
                case nil: return .failure(.notFound(id))
                case let status? where status != .running: return .failure(.wrongStatus(id, status))
                default: break
                }
                let rows = try session.query("""
                    WITH open AS (
                        SELECT id, status FROM tasks WHERE workflow_id = $1 AND status NOT IN \(Self.terminalStatuses) ORDER BY id FOR UPDATE
                    )
                    UPDATE tasks t SET status = 'cancelled', updated_at = now(), finished_at = now(), error = 'cancelled', dispatched = true
                    FROM open o WHERE t.id = o.id
                    RETURNING t.id, t.queue, o.status, t.attempts, t.correlation_id, t.callback_url IS NOT NULL
                    """, [id.description], name: "cancel workflow nodes").rows
                let nodes = rows.compactMap(Self.cancelledNode)
                try TaskStore.recordAdminEvents(
                    rows.compactMap { row in
                        row[0].flatMap { TaskID($0) }.map { ($0, row[3].flatMap { Int($0) } ?? 0, row[4] ?? "") }
                    }, status: "cancelled", error: "cancelled", on: session)
                _ = try WebhookStore.queue(rows.filter { $0[5] == "t" }.compactMap { $0[0].flatMap { TaskID($0) } }, on: session)
                let workflow = try session.query("""
                    UPDATE workflows SET status = 'cancelled', finished_at = now(), updated_at = now() WHERE id = $1
                    RETURNING id, name, status, (extract(epoch FROM finished_at - created_at) * 1000)::bigint
                    """, [id.description], name: "end cancelled workflow").rows.first.flatMap(Self.finished)
                return .success((nodes, workflow))
            }
        }.get()
    }

    /// The workflow's status, its row locked until the transaction ends; nil when there is none.
    private static func lockedStatus(of id: WorkflowID, on session: PostgresSession) throws(PostgresError) -> WorkflowStatus? {
        try session.query("SELECT status FROM workflows WHERE id = $1 FOR UPDATE", [id.description], name: "lock workflow")
            .rows.first?[0].flatMap(WorkflowStatus.init(rawValue:))
    }

    /// Runs the failed part of an ended workflow again: every node that failed, died, was cancelled or
    /// was skipped waits again for its dependencies that are re-run with it; the nodes that succeeded
    /// keep their results and are not run again. The workflow is running again.
    ///
    /// - Returns: what the re-opening decided (the nodes to dispatch now).
    /// - Throws: ``WorkflowActionError`` when there is no such workflow or it is running or succeeded.
    /// - Parameter finishedWithin: a workflow that ended longer ago than this is not retried: retention
    ///   is about to drop its nodes (``WorkflowActionError/expiring``).
    /// - Returns: what the re-opening decided (the nodes to dispatch now), and every re-opened node with
    ///   its queue (a cancel's marks in Redis must go, or the new attempts would be cancelled too).
    public func retry(_ id: WorkflowID, finishedWithin: Duration) async throws -> (advance: WorkflowAdvance, reopened: [CancelledNode]) {
        try await client.withSession { session in
            try session.transaction { () throws(PostgresError) -> Result<(advance: WorkflowAdvance, reopened: [CancelledNode]), WorkflowActionError> in
                guard let status = try Self.lockedStatus(of: id, on: session) else { return .failure(.notFound(id)) }
                guard status == .failed || status == .cancelled else { return .failure(.wrongStatus(id, status)) }
                let recent = try session.query(
                    "SELECT finished_at IS NULL OR finished_at > now() - $2::bigint * interval '1 millisecond' FROM workflows WHERE id = $1",
                    [id.description, String(finishedWithin.milliseconds)], name: "workflow within retention").rows.first?[0]
                guard recent == "t" else { return .failure(.expiring(id)) }
                let rows = try session.query(
                    "SELECT id, attempts, correlation_id, queue FROM tasks WHERE workflow_id = $1 AND status IN ('failed', 'dead', 'cancelled', 'skipped') ORDER BY id FOR UPDATE",
                    [id.description], name: "nodes to retry").rows
                let reopened = rows.compactMap { row -> (id: TaskID, attempt: Int, correlationID: String)? in
                    row[0].flatMap { TaskID($0) }.map { ($0, row[1].flatMap { Int($0) } ?? 0, row[2] ?? "") }
                }
                let queues = rows.compactMap { row in
                    row[0].flatMap { TaskID($0) }.map { CancelledNode(id: $0, queue: row[3] ?? "", wasStarted: true) }
                }
                return .success((try Self.reopen(reopened, on: session), queues))
            }
        }.get()
    }

    /// Re-opens nodes (`conveyor_workflow_reopen`, migration 8) in the caller's transaction and records
    /// a `redriven` event in each one's history.
    ///
    /// - Parameter redriven: dead nodes a redrive has just queued again: their children still waiting
    ///   are counted again (they had counted them as ended).
    static func reopen(
        _ nodes: [(id: TaskID, attempt: Int, correlationID: String)], redriven: [TaskID] = [], on session: PostgresSession
    ) throws(PostgresError) -> WorkflowAdvance {
        var advance = WorkflowAdvance()
        guard !nodes.isEmpty || !redriven.isEmpty else { return advance }
        try TaskStore.recordAdminEvents(nodes, status: "redriven", error: nil, on: session)
        let rows = try session.query(
            "SELECT task_id, task_status, task_workflow, has_callback FROM conveyor_workflow_reopen($1::bigint[], $2::bigint[])",
            [PostgresArrayLiteral.integers(nodes.map(\.id.rawValue)), PostgresArrayLiteral.integers(redriven.map(\.rawValue))],
            name: "reopen workflow nodes").rows
        var callbacks: [TaskID] = []
        for row in rows {
            guard let task = row[0].flatMap({ TaskID($0) }), let status = row[1] else { continue }
            if let workflow = row[2].flatMap({ WorkflowID($0) }) { advance.workflows.insert(workflow) }
            if status == TaskStatus.queued.rawValue {
                advance.queued.append(task)
            } else {
                advance.ended.append(task)
                if row[3] == "t" { callbacks.append(task) }
            }
        }
        advance.webhooksQueued = try WebhookStore.queue(callbacks, on: session)
        try TaskNotifications.notify(TaskNotifications.payloads(for: nodes.map(\.id) + advance.queued + advance.ended), on: session)
        return advance
    }

    /// The nodes a dead node's end failed or skipped without running, all the way down: what a redrive
    /// of it re-opens so its workflow carries on.
    static func nodesEndedBy(_ ids: [TaskID], on session: PostgresSession) throws(PostgresError) -> [(id: TaskID, attempt: Int, correlationID: String)] {
        try session.query("""
            WITH RECURSIVE down(id) AS (
                SELECT t.id FROM workflow_edges e JOIN tasks t ON t.id = e.child
                WHERE e.parent = ANY($1::bigint[])
                  AND (t.status = 'skipped' OR (t.status = 'failed' AND t.failed_deps > 0 AND t.on_dependency_failure = 'fail'))
                UNION
                SELECT t.id FROM down d JOIN workflow_edges e ON e.parent = d.id JOIN tasks t ON t.id = e.child
                WHERE t.status = 'skipped' OR (t.status = 'failed' AND t.failed_deps > 0 AND t.on_dependency_failure = 'fail')
            )
            SELECT t.id, t.attempts, t.correlation_id FROM down JOIN tasks t ON t.id = down.id ORDER BY t.id FOR UPDATE OF t
            """, [PostgresArrayLiteral.integers(ids.map(\.rawValue))], name: "nodes ended by a dead node").rows.compactMap { row in
            row[0].flatMap { TaskID($0) }.map { ($0, row[1].flatMap { Int($0) } ?? 0, row[2] ?? "") }
        }
    }
}

extension WorkflowStore {
    /// Waiting nodes of running workflows whose dependencies have all ended, idle for longer than
    /// `idleFor`: a node the join should have decided and did not (a count that went wrong, say in a race
    /// of a redrive with a join the locks do not order). Each is counted again from its dependencies'
    /// statuses and decided as the join decides (``reopen(_:redriven:on:)`` re-counts the waiting
    /// children of the parents it is given), in one transaction. Returns what that decided; empty when
    /// nothing was stuck, which is the rule.
    public func repairStuckNodes(idleFor: Duration, limit: Int = 1000) async throws -> WorkflowAdvance {
        try await client.withSession { session in
            try session.transaction { () throws(PostgresError) -> WorkflowAdvance in
                // Per running workflow, through its nodes' index (never a scan of `tasks`).
                let stuck = try session.query("""
                    SELECT k.id FROM workflows w
                    JOIN LATERAL (
                        SELECT t.id FROM tasks t
                        WHERE t.workflow_id = w.id AND t.status = 'waiting'
                          AND t.updated_at < now() - $1::bigint * interval '1 millisecond'
                    ) k ON true
                    WHERE w.status = 'running'
                      AND NOT EXISTS (
                          SELECT 1 FROM workflow_edges e JOIN tasks p ON p.id = e.parent
                          WHERE e.child = k.id AND p.status NOT IN \(Self.terminalStatuses))
                    LIMIT $2
                    """, [String(idleFor.milliseconds), String(limit)], name: "stuck workflow nodes").rows.compactMap { $0[0].flatMap { TaskID($0) } }
                guard !stuck.isEmpty else { return WorkflowAdvance() }
                let parents = try session.query(
                    "SELECT DISTINCT parent FROM workflow_edges WHERE child = ANY($1::bigint[])",
                    [PostgresArrayLiteral.integers(stuck.map(\.rawValue))], name: "parents of stuck nodes"
                ).rows.compactMap { $0[0].flatMap { TaskID($0) } }
                return try Self.reopen([], redriven: parents, on: session)
            }
        }
    }
}
