import ConveyorCore

/// A workflow as stored, without its nodes: a row of `GET /v1/workflows`.
public struct WorkflowSummary: Sendable, Hashable {
    public var id: WorkflowID
    public var name: String
    public var status: WorkflowStatus
    public var correlationID: String
    public var idempotencyKey: String?
    public var submittedBy: String?
    public var nodeCount: Int
    /// RFC 3339 UTC with milliseconds.
    public var createdAt: String
    public var updatedAt: String
    public var finishedAt: String?
}

/// A workflow with its nodes: `GET /v1/workflows/{id}`.
public struct WorkflowRecord: Sendable, Hashable {
    public var summary: WorkflowSummary
    /// In submission order (their task ids ascend in it).
    public var nodes: [Node]

    public struct Node: Sendable, Hashable {
        public var key: String
        public var taskID: TaskID
        public var type: String
        public var queue: String
        public var status: TaskStatus
        public var attempts: Int
        public var onDependencyFailure: DependencyFailurePolicy
        /// Keys of its dependencies.
        public var dependsOn: [String]
        public var error: String?
        public var createdAt: String
        public var updatedAt: String
        public var startedAt: String?
        public var finishedAt: String?
    }
}

extension WorkflowStore {
    static let summaryColumns = """
        id, name, status, correlation_id, idempotency_key, submitted_by, node_count,
        \(TaskStore.rfc3339("created_at")), \(TaskStore.rfc3339("updated_at")), \(TaskStore.rfc3339("finished_at"))
        """

    static func summary(_ row: [String?]) -> WorkflowSummary? {
        guard let id = row[0].flatMap({ WorkflowID($0) }), let status = row[2].flatMap(WorkflowStatus.init(rawValue:)) else { return nil }
        return WorkflowSummary(
            id: id, name: row[1] ?? "", status: status, correlationID: row[3] ?? "", idempotencyKey: row[4], submittedBy: row[5],
            nodeCount: row[6].flatMap { Int($0) } ?? 0, createdAt: row[7] ?? "", updatedAt: row[8] ?? "", finishedAt: row[9])
    }

    /// The workflow and every node, or nil when there is none.
    public func get(_ id: WorkflowID) async throws -> WorkflowRecord? {
        try await client.withSession { session in
            guard let summary = try session.query(
                "SELECT \(Self.summaryColumns) FROM workflows WHERE id = $1", [id.description], name: "get workflow"
            ).rows.first.flatMap(Self.summary)
            else { return nil }
            let rows = try session.query("""
                SELECT id, node_key, type, queue, status, attempts, on_dependency_failure, error,
                       \(TaskStore.rfc3339("created_at")), \(TaskStore.rfc3339("updated_at")),
                       \(TaskStore.rfc3339("started_at")), \(TaskStore.rfc3339("finished_at"))
                FROM tasks WHERE workflow_id = $1 ORDER BY id
                """, [id.description], name: "workflow nodes").rows
            let edges = try session.query(
                "SELECT parent, child FROM workflow_edges WHERE workflow_id = $1 ORDER BY child, parent", [id.description],
                name: "workflow edges"
            ).rows
            var keyOf: [TaskID: String] = [:]
            for row in rows {
                if let task = row[0].flatMap({ TaskID($0) }) { keyOf[task] = row[1] ?? "" }
            }
            var parents: [TaskID: [String]] = [:]
            for edge in edges {
                guard let parent = edge[0].flatMap({ TaskID($0) }), let child = edge[1].flatMap({ TaskID($0) }) else { continue }
                parents[child, default: []].append(keyOf[parent] ?? parent.description)
            }
            let nodes = rows.compactMap { row -> WorkflowRecord.Node? in
                guard let task = row[0].flatMap({ TaskID($0) }), let status = row[4].flatMap(TaskStatus.init(rawValue:)) else { return nil }
                return WorkflowRecord.Node(
                    key: row[1] ?? "", taskID: task, type: row[2] ?? "", queue: row[3] ?? "", status: status,
                    attempts: row[5].flatMap { Int($0) } ?? 0,
                    onDependencyFailure: row[6].flatMap(DependencyFailurePolicy.init(rawValue:)) ?? .fail,
                    dependsOn: parents[task] ?? [], error: row[7], createdAt: row[8] ?? "", updatedAt: row[9] ?? "",
                    startedAt: row[10], finishedAt: row[11])
            }
            return WorkflowRecord(summary: summary, nodes: nodes)
        }
    }

    /// A page of workflows, newest first, optionally of one status and one name, before `beforeID`; and
    /// where the next page starts (nil at the end).
    public func list(
        status: WorkflowStatus?, name: String?, before beforeID: WorkflowID?, limit: Int
    ) async throws -> (workflows: [WorkflowSummary], next: WorkflowID?) {
        let rows = try await client.withSession { session in
            try session.query("""
                SELECT \(Self.summaryColumns) FROM workflows
                WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR name = $2) AND ($3::bigint IS NULL OR id < $3)
                ORDER BY id DESC LIMIT $4
                """, [status?.rawValue, name, beforeID?.description, String(limit)], name: "list workflows").rows
        }
        let page = rows.compactMap(Self.summary)
        return (page, page.count == limit ? page.last?.id : nil)
    }

    /// Nodes of running workflows that wait on their dependencies (the gauge of that name).
    public func waitingNodes() async throws -> Int {
        try await client.withSession { session in
            // Per running workflow, through its nodes' index: never a scan of `tasks`, whatever the
            // planner thinks of the two tables' sizes.
            try session.query("""
                SELECT coalesce(sum((SELECT count(*) FROM tasks t WHERE t.workflow_id = w.id AND t.status = 'waiting')), 0)
                FROM workflows w WHERE w.status = 'running'
                """, name: "waiting nodes").rows.first?[0].flatMap { Int($0) } ?? 0
        }
    }
}
