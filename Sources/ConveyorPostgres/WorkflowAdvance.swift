import ConveyorCore

/// What a transaction that ended workflow nodes decided for the rest of their workflows: the nodes it
/// queued (to be put on their ready streams once it has committed), the nodes it ended without running,
/// and the workflows whose last node may have ended.
public struct WorkflowAdvance: Sendable, Hashable {
    /// Nodes now `queued` and not yet in Redis (`dispatched` is false until they are).
    public var queued: [TaskID] = []
    /// Nodes ended without running (skipped, or failed by a dependency).
    public var ended: [TaskID] = []
    /// Workflows one of whose nodes ended: each may have finished.
    public var workflows: Set<WorkflowID> = []
    /// Completion webhooks queued for the nodes it ended.
    public var webhooksQueued = 0

    public init() {}

    public var isEmpty: Bool { queued.isEmpty && ended.isEmpty && workflows.isEmpty }

    public mutating func merge(_ other: WorkflowAdvance) {
        queued += other.queued
        ended += other.ended
        workflows.formUnion(other.workflows)
        webhooksQueued += other.webhooksQueued
    }

    /// Runs the join (`conveyor_workflow_settle`, migration 8) for nodes that have just ended, inside the
    /// caller's transaction, and queues the completion webhooks of the nodes it ends in turn.
    ///
    /// - Parameter endedWorkflows: the workflows of `ended` (they may have finished).
    static func settle(_ ended: [TaskID], of endedWorkflows: Set<WorkflowID>, on session: PostgresSession) throws(PostgresError) -> WorkflowAdvance {
        var advance = WorkflowAdvance()
        advance.workflows = endedWorkflows
        guard !ended.isEmpty else { return advance }
        let rows = try session.query(
            "SELECT task_id, task_status, task_workflow, has_callback FROM conveyor_workflow_settle($1::bigint[])",
            [PostgresArrayLiteral.integers(ended.map(\.rawValue))], name: "settle workflow nodes").rows
        var callbacks: [TaskID] = []
        for row in rows {
            guard let id = row[0].flatMap({ TaskID($0) }), let status = row[1] else { continue }
            if status == TaskStatus.queued.rawValue {
                advance.queued.append(id)
            } else {
                advance.ended.append(id)
                if let workflow = row[2].flatMap({ Int64($0) }) { advance.workflows.insert(WorkflowID(rawValue: workflow)) }
                if row[3] == "t" { callbacks.append(id) }
            }
        }
        advance.webhooksQueued = try WebhookStore.queue(callbacks, on: session)
        try TaskNotifications.notify(TaskNotifications.payloads(for: advance.queued + advance.ended), on: session)
        return advance
    }
}
