import ConveyorCore

/// An unfinished task as PostgreSQL knows it: enough to put its next attempt on a ready stream again.
public struct UnfinishedTask: Sendable, Hashable {
    public var id: TaskID
    public var type: String
    public var queue: String
    public var status: TaskStatus
    public var params: String
    public var correlationID: String
    public var attempts: Int
    public var maxAttempts: Int
    public var createdAtMillis: Int64
    /// Whether an agent reported on it, or a reconciliation found it in Redis.
    public var dispatched: Bool
    /// A scheduled task's due time (Unix ms).
    public var runAtMillis: Int64?
    public var hasCallback: Bool
    public var priority: TaskPriority = .normal
    public var limitKey: String?
    /// A workflow node's dependencies and their results (JSON object text), nil for any other task.
    public var dependencies: String?
    /// Whether it is a node of a workflow (whose ``dependencies`` are read with it).
    var isWorkflowNode = false

    public init(
        id: TaskID, type: String, queue: String, status: TaskStatus, params: String, correlationID: String,
        attempts: Int, maxAttempts: Int, createdAtMillis: Int64, dispatched: Bool, runAtMillis: Int64? = nil, hasCallback: Bool = false
    ) {
        self.runAtMillis = runAtMillis
        self.hasCallback = hasCallback
        self.id = id
        self.type = type
        self.queue = queue
        self.status = status
        self.params = params
        self.correlationID = correlationID
        self.attempts = attempts
        self.maxAttempts = maxAttempts
        self.createdAtMillis = createdAtMillis
        self.dispatched = dispatched
    }

    /// The attempt a re-dispatch runs: a `running` attempt that vanished runs again under its own
    /// number (its events then merge as a replay); a queued or retrying task runs its next one.
    public var nextAttempt: Int {
        status == .running ? max(attempts, 1) : attempts + 1
    }
}

/// What the Reconciler remembers of an unfinished task between reading it and the Redis census: enough
/// to tell afterwards whether it moved, in a few dozen bytes (no params, no result).
public struct UnfinishedTaskState: Sendable, Hashable {
    public var id: TaskID
    public var queue: String
    public var status: TaskStatus
    public var attempts: Int32
}

extension TaskStore {
    static let unfinishedColumns = """
        id, type, queue, status, params::text, correlation_id, attempts, max_attempts,
        (extract(epoch FROM created_at) * 1000)::bigint, dispatched,
        (extract(epoch FROM run_at) * 1000)::bigint, callback_url IS NOT NULL, priority, limit_key,
        workflow_id IS NOT NULL
        """

    /// Gives the workflow nodes among `tasks` their dependencies' results (``UnfinishedTask/dependencies``),
    /// read in one statement for all of them and bounded by their ids (a per-row subquery or function
    /// was planned badly on fresh rows: 10,000 nodes took seconds).
    static func attachDependencies(_ tasks: inout [UnfinishedTask], on session: PostgresSession) throws(PostgresError) {
        let nodes = tasks.filter(\.isWorkflowNode).map(\.id)
        guard !nodes.isEmpty else { return }
        let found = try dependencies(of: nodes, on: session)
        for index in tasks.indices where tasks[index].isWorkflowNode { tasks[index].dependencies = found[tasks[index].id] }
    }

    /// Each node's dependencies by node key: task id, status, and result or error, as JSON text. A node
    /// without dependencies (a root) has no entry.
    static func dependencies(of nodes: [TaskID], on session: PostgresSession) throws(PostgresError) -> [TaskID: String] {
        let rows = try session.query("""
            SELECT e.child, jsonb_object_agg(p.node_key, jsonb_strip_nulls(jsonb_build_object(
                       'task_id', p.id, 'status', p.status, 'result', p.result, 'error', p.error)))::text
            FROM workflow_edges e JOIN tasks p ON p.id = e.parent
            WHERE e.child = ANY($1::bigint[]) AND p.id IN (SELECT x.parent FROM workflow_edges x WHERE x.child = ANY($1::bigint[]))
            GROUP BY e.child
            """, [PostgresArrayLiteral.integers(nodes.map(\.rawValue))], name: "node dependencies").rows
        var found: [TaskID: String] = [:]
        for row in rows {
            if let id = row[0].flatMap({ TaskID($0) }), let json = row[1] { found[id] = json }
        }
        return found
    }

    /// Tasks older than `age` (by PostgreSQL's clock) that no agent has reported on and that are not
    /// known to be in Redis, oldest first (served by the partial index `tasks_undispatched`). Age counts
    /// from the last change too: a workflow node queued a moment ago by its last dependency's end is
    /// being dispatched by the coordinator that queued it, however old its row is.
    public func undispatched(olderThan age: Duration, limit: Int) async throws -> [UnfinishedTask] {
        try await client.withSession { session in
            var tasks = try session.query("""
                SELECT \(Self.unfinishedColumns) FROM tasks
                WHERE NOT dispatched AND created_at < now() - $1::bigint * interval '1 millisecond' AND status IN ('queued', 'scheduled')
                  AND updated_at < now() - $1::bigint * interval '1 millisecond'
                ORDER BY created_at LIMIT $2
                """, [String(age.milliseconds), String(limit)], name: "undispatched tasks").rows.compactMap(Self.unfinished)
            try Self.attachDependencies(&tasks, on: session)
            return tasks
        }
    }

    /// A page of the dispatched tasks that are not finished, by id after `afterID`, as the small
    /// ``UnfinishedTaskState`` (no params: a pass after a Redis loss holds every unfinished task's state
    /// at once), how many unfinished rows the page read (undispatched ones too), and the last id the page
    /// covered (nil when there are no more). Walks the primary key:
    /// its cost grows with the table, so it is for the rare pass after Redis restarted, never for a
    /// periodic one.
    public func unfinishedDispatched(after afterID: TaskID?, limit: Int) async throws -> (tasks: [UnfinishedTaskState], unfinishedRows: Int, lastID: TaskID?) {
        let rows = try await client.withSession { session in
            try session.query("""
                SELECT id, queue, status, attempts, dispatched FROM tasks
                WHERE id > $1 AND status IN ('scheduled', 'queued', 'running', 'retrying')
                ORDER BY id LIMIT $2
                """, [String(afterID?.rawValue ?? 0), String(limit)], name: "unfinished tasks").rows
        }
        let states = rows.compactMap { row -> UnfinishedTaskState? in
            // Undispatched ones are the other recovery's: their XADD may still be on its way.
            guard row[4] == "t", let id = row[0].flatMap({ TaskID($0) }), let queue = row[1],
                let status = row[2].flatMap(TaskStatus.init(rawValue:)), let attempts = row[3].flatMap({ Int32($0) })
            else { return nil }
            return UnfinishedTaskState(id: id, queue: queue, status: status, attempts: attempts)
        }
        return (states, rows.count, rows.count == limit ? rows.last?[0].flatMap { TaskID($0) } : nil)
    }

    /// The full rows of `states` whose task has not moved since its state was read (same status and
    /// attempts): the ones a re-dispatch may still concern.
    public func unchangedRows(_ states: [UnfinishedTaskState]) async throws -> [UnfinishedTask] {
        guard !states.isEmpty else { return [] }
        let literal = PostgresArrayLiteral.integers(states.map(\.id.rawValue))
        let tasks = try await client.withSession { session in
            var tasks = try session.query(
                "SELECT \(Self.unfinishedColumns) FROM tasks WHERE id = ANY($1::bigint[])", [literal], name: "reread tasks"
            ).rows.compactMap(Self.unfinished)
            try Self.attachDependencies(&tasks, on: session)
            return tasks
        }
        var read: [TaskID: (status: TaskStatus, attempts: Int32)] = [:]
        for state in states { read[state.id] = (state.status, state.attempts) }
        return tasks.filter { task in
            guard let before = read[task.id] else { return false }
            return before.status == task.status && Int(before.attempts) == task.attempts
        }
    }

    /// The undispatched tasks among `tasks` whose row has not moved since it was read (same status and
    /// attempts) and is still not marked dispatched: the ones a re-dispatch may still concern.
    public func unchangedUndispatched(_ tasks: [UnfinishedTask]) async throws -> [UnfinishedTask] {
        guard !tasks.isEmpty else { return [] }
        let literal = PostgresArrayLiteral.integers(tasks.map(\.id.rawValue))
        let current = try await client.withSession { session in
            try session.query(
                "SELECT id, status, attempts, dispatched FROM tasks WHERE id = ANY($1::bigint[])",
                [literal], name: "recheck tasks").rows
        }
        var state: [TaskID: (status: String, attempts: Int, dispatched: Bool)] = [:]
        for row in current {
            guard let id = row[0].flatMap({ TaskID($0) }), let status = row[1], let attempts = row[2].flatMap({ Int($0) }) else { continue }
            state[id] = (status, attempts, row[3] == "t")
        }
        return tasks.filter { task in
            guard let now = state[task.id] else { return false }
            return now.status == task.status.rawValue && now.attempts == task.attempts && !now.dispatched
        }
    }

    /// Marks tasks as known to be in Redis, so the Reconciler does not look at them again.
    public func markDispatched(_ ids: [TaskID]) async throws {
        guard !ids.isEmpty else { return }
        let literal = PostgresArrayLiteral.integers(ids.map(\.rawValue))
        _ = try await client.withSession { session in
            try session.query(
                "UPDATE tasks SET dispatched = true WHERE id = ANY($1::bigint[]) AND NOT dispatched",
                [literal], name: "mark dispatched").affected
        }
    }

    static func unfinished(_ row: [String?]) -> UnfinishedTask? {
        guard let id = row[0].flatMap({ TaskID($0) }), let type = row[1], let queue = row[2],
            let status = row[3].flatMap(TaskStatus.init(rawValue:)), let attempts = row[6].flatMap({ Int($0) }),
            let maxAttempts = row[7].flatMap({ Int($0) }), let created = row[8].flatMap({ Int64($0) })
        else { return nil }
        var task = UnfinishedTask(
            id: id, type: type, queue: queue, status: status, params: row[4] ?? "{}", correlationID: row[5] ?? "",
            attempts: attempts, maxAttempts: maxAttempts, createdAtMillis: created, dispatched: row[9] == "t",
            runAtMillis: row[10].flatMap { Int64($0) }, hasCallback: row[11] == "t")
        task.priority = row[12].flatMap { TaskPriority(text: $0) } ?? .normal
        task.limitKey = row[13]
        task.isWorkflowNode = row[14] == "t"
        return task
    }
}
