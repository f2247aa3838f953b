import ConveyorCore

extension TaskStore {
    /// Marks the tasks of `ids` that have not finished `cancelled`, in one transaction: one UPDATE, one
    /// insert of their history events, their completion webhooks, and their workflows' join. Returns the
    /// ids it cancelled (the rest had finished) and what the cancel decided for their workflows.
    public func cancel(_ ids: [TaskID]) async throws -> (cancelled: [TaskID], advance: WorkflowAdvance) {
        guard !ids.isEmpty else { return ([], WorkflowAdvance()) }
        return try await client.withSession { session in
            try session.transaction { () throws(PostgresError) -> (cancelled: [TaskID], advance: WorkflowAdvance) in
                // In id order, as the Recorder's merge locks rows, so the two never deadlock.
                let rows = try session.query("""
                    WITH target AS (
                        SELECT id FROM tasks WHERE id = ANY($1::bigint[])
                          AND status NOT IN ('succeeded', 'failed', 'dead', 'cancelled', 'skipped')
                        ORDER BY id FOR UPDATE
                    )
                    UPDATE tasks t SET status = 'cancelled', updated_at = now(), finished_at = now(), error = 'cancelled', dispatched = true
                    FROM target WHERE t.id = target.id
                    RETURNING t.id, t.attempts, t.correlation_id, t.callback_url IS NOT NULL, t.workflow_id
                    """, [PostgresArrayLiteral.integers(ids.map(\.rawValue))], name: "cancel tasks").rows
                var cancelled: [(id: TaskID, attempt: Int, correlationID: String)] = []
                var callbacks: [TaskID] = []
                var nodes: [TaskID] = []
                var workflows: Set<WorkflowID> = []
                for row in rows {
                    guard let id = row[0].flatMap({ TaskID($0) }) else { continue }
                    cancelled.append((id, row[1].flatMap { Int($0) } ?? 0, row[2] ?? ""))
                    if row[3] == "t" { callbacks.append(id) }
                    if let workflow = row[4].flatMap({ Int64($0) }) {
                        nodes.append(id)
                        workflows.insert(WorkflowID(rawValue: workflow))
                    }
                }
                try Self.recordAdminEvents(cancelled, status: "cancelled", error: "cancelled", on: session)
                _ = try WebhookStore.queue(callbacks, on: session)
                let advance = try WorkflowAdvance.settle(nodes, of: workflows, on: session)
                return (cancelled.map(\.id), advance)
            }
        }
    }
}
