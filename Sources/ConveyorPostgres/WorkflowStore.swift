import ConveyorCore

/// A workflow to be stored: its graph and, per node in the graph's order, the task it runs and what it
/// does when a dependency does not succeed.
public struct NewWorkflow: Sendable {
    public var name: String
    public var graph: WorkflowGraph
    public var nodes: [Node]
    public var correlationID: String
    public var idempotencyKey: String?
    public var submittedBy: String?
    public var createdAtMillis: Int64

    public struct Node: Sendable {
        public var key: String
        public var task: NewTask
        public var onDependencyFailure: DependencyFailurePolicy

        public init(key: String, task: NewTask, onDependencyFailure: DependencyFailurePolicy) {
            self.key = key
            self.task = task
            self.onDependencyFailure = onDependencyFailure
        }
    }

    public init(
        name: String, graph: WorkflowGraph, nodes: [Node], correlationID: String, idempotencyKey: String? = nil,
        submittedBy: String? = nil, createdAtMillis: Int64
    ) {
        self.name = name
        self.graph = graph
        self.nodes = nodes
        self.correlationID = correlationID
        self.idempotencyKey = idempotencyKey
        self.submittedBy = submittedBy
        self.createdAtMillis = createdAtMillis
    }
}

/// The outcome of ``WorkflowStore/insert(_:)``.
public struct InsertedWorkflow: Sendable {
    public var id: WorkflowID
    public var status: WorkflowStatus
    /// False when an earlier workflow with the same idempotency key was returned instead.
    public var created: Bool
    /// Each node's key and task id, in the order submitted.
    public var nodes: [Node]
    /// The nodes that start at once (no dependencies), with their tasks: what goes to Redis now.
    public var roots: [(task: NewTask, id: TaskID)]

    public struct Node: Sendable, Hashable {
        public var key: String
        public var id: TaskID
        public var status: TaskStatus
    }
}

/// Reads and writes workflows: the `workflows` row, its nodes (rows of `tasks`) and its edges.
public struct WorkflowStore: Sendable {
    public let client: PostgresClient
    private let ids = TaskIDAllocator()

    public init(client: PostgresClient) {
        self.client = client
    }

    /// Seeds the hash of a workflow idempotency key's lock ("wflw"), apart from the tasks' keys.
    static let idempotencyLockSeed: Int64 = 0x7766_6C77

    /// Stores a whole workflow in one transaction: its row, every node's task (roots `queued` and not yet
    /// dispatched, the others `waiting` on their dependencies), one edge per dependency, and the nodes'
    /// tags. A workflow whose idempotency key is known returns the stored one instead.
    public func insert(_ workflow: NewWorkflow) async throws -> InsertedWorkflow {
        let ids = self.ids
        return try await client.withSession { session in
            try session.transaction { () throws(PostgresError) -> InsertedWorkflow in
                if let key = workflow.idempotencyKey {
                    // As for tasks: a transaction lock per key, so two coordinators racing on a new key
                    // serialise and the second finds the first one's row.
                    _ = try session.query(
                        "SELECT pg_advisory_xact_lock(hashtextextended($1, \(Self.idempotencyLockSeed)))", [key], name: "lock workflow key")
                    if let row = try session.query(
                        "SELECT id, status FROM workflows WHERE idempotency_key = $1", [key], name: "find workflow key").rows.first,
                        let id = row[0].flatMap({ WorkflowID($0) })
                    {
                        return InsertedWorkflow(
                            id: id, status: row[1].flatMap(WorkflowStatus.init(rawValue:)) ?? .running, created: false,
                            nodes: try Self.nodes(of: id, on: session), roots: [])
                    }
                }
                guard let id = try session.query("SELECT nextval('conveyor_workflow_ids')", name: "workflow id").rows.first?[0]
                    .flatMap({ WorkflowID($0) })
                else { throw PostgresError(.unexpectedResult, "no workflow id", query: "nextval") }
                let graph = workflow.graph
                // Ids follow the dependency order, so every parent's id is below its children's: lock
                // orders by id (the join's, a cancel's) then agree with the order work flows in, and the
                // last nodes to end have the highest ids (``finishIfEnded(_:)`` looks there first).
                let allocated = try ids.allocate(workflow.nodes.count, on: session)
                var taskIDs = allocated
                for (position, node) in graph.order.enumerated() { taskIDs[node] = allocated[position] }
                var rows = CopyRowEncoder(reservingCapacity: workflow.nodes.count * 200)
                var nodes: [InsertedWorkflow.Node] = []
                var roots: [(task: NewTask, id: TaskID)] = []
                for (index, node) in workflow.nodes.enumerated() {
                    let waitingOn = graph.dependencies[index].count
                    let status: TaskStatus = waitingOn == 0 ? .queued : .waiting
                    TaskStore.appendColumns(of: node.task, id: taskIDs[index], status: status, to: &rows)
                    rows.append(bigint: id.rawValue)
                    rows.append(text: node.key)
                    rows.append(integer: waitingOn)
                    rows.append(integer: 0)
                    rows.append(text: node.onDependencyFailure.rawValue)
                    // A waiting node has nothing in Redis to look for: the Reconciler leaves it alone.
                    rows.append(boolean: waitingOn > 0)
                    rows.endRow()
                    nodes.append(InsertedWorkflow.Node(key: node.key, id: taskIDs[index], status: status))
                    if waitingOn == 0 { roots.append((node.task, taskIDs[index])) }
                }
                try session.copy(
                    into: "tasks (\(TaskStore.copyColumns), workflow_id, node_key, waiting_on, failed_deps, on_dependency_failure, dispatched)",
                    rows.finish(), name: "copy workflow nodes")
                let tagRows = TaskStore.tagCopyRows(zip(workflow.nodes.lazy.map(\.task), taskIDs))
                if !tagRows.isEmpty {
                    try session.copy(into: "task_tags (key, value, task_id)", tagRows, name: "copy task tags")
                }
                var edges = CopyRowEncoder(reservingCapacity: workflow.nodes.count * 40)
                for (child, parents) in graph.dependencies.enumerated() {
                    for parent in parents {
                        edges.append(bigint: id.rawValue)
                        edges.append(bigint: taskIDs[parent].rawValue)
                        edges.append(bigint: taskIDs[child].rawValue)
                        edges.endRow()
                    }
                }
                if edges.rowCount > 0 {
                    try session.copy(into: "workflow_edges (workflow_id, parent, child)", edges.finish(), name: "copy workflow edges")
                }
                _ = try session.query("""
                    INSERT INTO workflows (id, name, status, correlation_id, idempotency_key, submitted_by, node_count, created_at, updated_at)
                    VALUES ($1, $2, 'running', $3, $4, $5, $6, $7::timestamptz, $7::timestamptz)
                    """, [
                        id.description, workflow.name, workflow.correlationID, workflow.idempotencyKey, workflow.submittedBy,
                        String(workflow.nodes.count), PostgresTimestamp.text(millis: workflow.createdAtMillis),
                    ], name: "insert workflow")
                return InsertedWorkflow(id: id, status: .running, created: true, nodes: nodes, roots: roots)
            }
        }
    }

    private static func nodes(of id: WorkflowID, on session: PostgresSession) throws(PostgresError) -> [InsertedWorkflow.Node] {
        try session.query(
            "SELECT node_key, id, status FROM tasks WHERE workflow_id = $1 ORDER BY id", [id.description], name: "workflow nodes"
        ).rows.compactMap { row in
            guard let key = row[0], let task = row[1].flatMap({ TaskID($0) }), let status = row[2].flatMap(TaskStatus.init(rawValue:)) else { return nil }
            return InsertedWorkflow.Node(key: key, id: task, status: status)
        }
    }

    /// The nodes among `ids` that are queued and not yet in Redis, with what their first entry needs
    /// (their dependencies' results included).
    public func dispatchable(_ ids: [TaskID]) async throws -> [UnfinishedTask] {
        guard !ids.isEmpty else { return [] }
        return try await client.withSession { session in
            var nodes = try session.query(
                "SELECT \(TaskStore.unfinishedColumns) FROM tasks WHERE id = ANY($1::bigint[]) AND status = 'queued' AND NOT dispatched",
                [PostgresArrayLiteral.integers(ids.map(\.rawValue))], name: "dispatchable nodes"
            ).rows.compactMap(TaskStore.unfinished)
            try TaskStore.attachDependencies(&nodes, on: session)
            return nodes
        }
    }
}
