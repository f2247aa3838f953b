import ConveyorCore

/// A task to be inserted by the Submitter.
public struct NewTask: Sendable, Hashable {
    public var type: String
    public var queue: String
    /// Compact JSON text.
    public var params: String
    public var correlationID: String
    public var idempotencyKey: String?
    public var maxAttempts: Int
    public var createdAtMillis: Int64
    /// The name of the API token that submitted it (nil when authentication is disabled).
    public var submittedBy: String?
    /// The submission's tags as a compact JSON object, nil for none.
    public var tags: String?
    /// When a scheduled task is due (Unix ms); nil for a task that runs now. Such a task is stored
    /// `scheduled` and parked in its queue's delayed set.
    public var runAtMillis: Int64?
    /// Where its completion webhook goes (nil: none).
    public var callbackURL: String?
    /// Which ready stream of its queue carries it.
    public var priority: TaskPriority
    /// The value its type's per-key limits count it under.
    public var limitKey: String?

    public init(
        type: String, queue: String, params: String, correlationID: String, idempotencyKey: String?,
        maxAttempts: Int, createdAtMillis: Int64, submittedBy: String? = nil, tags: String? = nil,
        runAtMillis: Int64? = nil, callbackURL: String? = nil, priority: TaskPriority = .normal, limitKey: String? = nil
    ) {
        self.priority = priority
        self.limitKey = limitKey
        self.runAtMillis = runAtMillis
        self.callbackURL = callbackURL
        self.submittedBy = submittedBy
        self.tags = tags
        self.type = type
        self.queue = queue
        self.params = params
        self.correlationID = correlationID
        self.idempotencyKey = idempotencyKey
        self.maxAttempts = maxAttempts
        self.createdAtMillis = createdAtMillis
    }
}

extension NewTask {
    /// `scheduled` for a task with a `run_at`, else `queued`.
    public var initialStatus: TaskStatus { runAtMillis == nil ? .queued : .scheduled }

    /// Only its `tasks` row to write: no idempotency key to look up under a lock, no tags, not filed as
    /// scheduled.
    var isPlainInsert: Bool { idempotencyKey == nil && tags == nil && runAtMillis == nil }
}

/// The outcome of inserting one ``NewTask``.
public struct InsertedTask: Sendable, Hashable {
    public var id: TaskID
    public var status: TaskStatus
    /// False when an earlier task with the same idempotency key was returned instead.
    public var created: Bool
}

/// A task as stored, for `GET /v1/tasks/{id}`.
public struct TaskRecord: Sendable, Hashable {
    public var id: TaskID
    public var type: String
    public var queue: String
    public var status: TaskStatus
    public var attempts: Int
    public var maxAttempts: Int
    public var params: String
    public var result: String?
    public var error: String?
    public var correlationID: String
    public var idempotencyKey: String?
    /// RFC 3339 UTC with milliseconds.
    public var createdAt: String
    public var updatedAt: String
    public var startedAt: String?
    public var finishedAt: String?
    /// The token that submitted it.
    public var submittedBy: String?
    /// JSON object text, nil for none.
    public var tags: String?
    /// The latest progress report as JSON text (see ``TaskProgress/json(attempt:atMillis:)``).
    public var progress: String?
    /// When a scheduled task is (or was) due, RFC 3339.
    public var runAt: String?
    public var callbackURL: String?
    public var priority: TaskPriority = .normal
    public var limitKey: String?
    /// The workflow it is a node of.
    public var workflowID: Int64?
}

/// Reads and writes the `tasks` table.
public struct TaskStore: Sendable {
    public let client: PostgresClient
    private let ids = TaskIDAllocator()

    public init(client: PostgresClient) {
        self.client = client
    }

    /// Inserts a batch of tasks in one statement (a COPY, or one INSERT for a small plain batch), in a
    /// transaction with the lookups when they have idempotency keys, honouring them: a key seen
    /// before (in the table or earlier in this batch) yields the existing task instead of a new one.
    ///
    /// - Returns: one result per input, in order. When this returns, the new rows are committed.
    public func insert(_ tasks: [NewTask]) async throws -> [InsertedTask] {
        let ids = self.ids
        return try await client.withSession { session in try Self.insert(tasks, on: session, ids: ids) }
    }

    private static func insert(_ tasks: [NewTask], on session: PostgresSession, ids: TaskIDAllocator) throws(PostgresError) -> [InsertedTask] {
        // A batch without idempotency keys, tags or scheduled tasks is one statement (an INSERT, or a COPY
        // for a large batch), and a statement outside a transaction block is a transaction of its own:
        // BEGIN and COMMIT would only add two round trips per flush (the Submitter flushes a few tasks at
        // a time at 1,000 single POSTs a second).
        if tasks.allSatisfy(\.isPlainInsert) {
            let newIDs = try ids.allocate(tasks.count, on: session)
            if tasks.count <= largestInsertedBatch, let parameters = plainInsertParameters(zip(tasks, newIDs), rows: tasks.count) {
                _ = try session.queryPrepared(plainInsert, binary: parameters, name: "insert tasks")
            } else {
                try session.copy(into: copyTarget, copyRows(zip(tasks, newIDs)), name: "copy tasks")
            }
            return zip(tasks, newIDs).map { InsertedTask(id: $1, status: $0.initialStatus, created: true) }
        }
        return try session.transaction { () throws(PostgresError) -> [InsertedTask] in
            let keys = Set(tasks.compactMap(\.idempotencyKey))
            var known: [String: InsertedTask] = [:]
            if !keys.isEmpty {
                // Two coordinators may race on the same new key. No unique index can catch it (the table is
                // partitioned by id), so each takes a transaction lock per key, in one order (no deadlock):
                // the second waits for the first to commit, then finds its row below.
                let literal = PostgresArrayLiteral.text(keys)
                _ = try session.query("""
                    SELECT pg_advisory_xact_lock(h) FROM (
                        SELECT DISTINCT hashtextextended(k, \(idempotencyLockSeed)) AS h FROM unnest($1::text[]) AS k ORDER BY 1
                    ) AS keys
                    """, [literal], name: "lock idempotency keys")
                let rows = try session.query(
                    "SELECT idempotency_key, id, status FROM tasks WHERE idempotency_key = ANY($1::text[])",
                    [literal], name: "find idempotency keys")
                for row in rows.rows {
                    guard let key = row[0], let id = row[1].flatMap({ TaskID($0) }), let status = row[2].flatMap(TaskStatus.init(rawValue:)) else { continue }
                    known[key] = InsertedTask(id: id, status: status, created: false)
                }
            }
            var results: [InsertedTask?] = Array(repeating: nil, count: tasks.count)
            var fresh: [Int] = []
            var keysInBatch: [String: Int] = [:]
            for (index, task) in tasks.enumerated() {
                if let key = task.idempotencyKey {
                    if let existing = known[key] {
                        results[index] = existing
                        continue
                    }
                    if keysInBatch[key] != nil { continue }  // resolved after the first one gets its id
                    keysInBatch[key] = index
                }
                fresh.append(index)
            }
            let newIDs = try ids.allocate(fresh.count, on: session)
            for (index, id) in zip(fresh, newIDs) {
                results[index] = InsertedTask(id: id, status: tasks[index].initialStatus, created: true)
            }
            if !fresh.isEmpty {
                try session.copy(into: copyTarget, copyRows(zip(fresh.lazy.map { tasks[$0] }, newIDs)), name: "copy tasks")
                // Only tagged tasks touch the tags index (task_tags), so untagged submissions pay nothing.
                let tagRows = tagCopyRows(zip(fresh.lazy.map { tasks[$0] }, newIDs))
                if !tagRows.isEmpty {
                    try session.copy(into: "task_tags (key, value, task_id)", tagRows, name: "copy task tags")
                }
                // Scheduled tasks are filed for search here; the UPDATE trigger keeps the file from then on.
                let scheduled = zip(fresh, newIDs).filter { tasks[$0.0].initialStatus == .scheduled }.map(\.1)
                if !scheduled.isEmpty {
                    _ = try session.query(
                        "INSERT INTO task_attention (status, task_id) SELECT 'scheduled', unnest($1::bigint[]) ON CONFLICT DO NOTHING",
                        [PostgresArrayLiteral.integers(scheduled.map(\.rawValue))], name: "file scheduled tasks")
                }
            }
            // A key repeated within the batch gets the task of its first occurrence.
            for (index, task) in tasks.enumerated() where results[index] == nil {
                guard let key = task.idempotencyKey, let firstIndex = keysInBatch[key], let first = results[firstIndex] else {
                    throw PostgresError(.unexpectedResult, "task \(index) of the batch got no id", query: "insert tasks")
                }
                results[index] = InsertedTask(id: first.id, status: first.status, created: false)
            }
            return results.compactMap { $0 }
        }
    }

    /// The most plain tasks a flush inserts with one INSERT of array columns; more go in a COPY. A COPY
    /// takes two round trips (the COPY, then its rows), an INSERT one, and at a light load (a few tasks
    /// per flush) the round trip, a wake-up of the connection's thread and of its backend, costs more
    /// than PostgreSQL saves reading COPY rows.
    static let largestInsertedBatch = 64

    /// The binary array parameters of ``plainInsert`` for plain tasks (no idempotency key, tags or
    /// schedule: those columns stay NULL, as in their COPY rows); nil when they do not fit one statement's
    /// parameters (``BinaryArrayColumns`` cuts them at 32 MiB). A plain flush runs outside a transaction
    /// block, so it must be one statement: two would let the first commit without the second.
    private static func plainInsertParameters(_ rows: some Sequence<(NewTask, TaskID)>, rows count: Int) -> [[UInt8]]? {
        var columns = BinaryArrayColumns(
            [(.bigint, 12), (.text, 16), (.text, 16), (.text, 12), (.jsonb, 32), (.text, 40), (.integer, 8), (.timestamptz, 12),
             (.text, 16), (.text, 4), (.integer, 4), (.text, 4)], rows: count)
        for (task, id) in rows {
            columns.columns[0].append(bigint: id.rawValue)
            columns.columns[1].append(text: task.type)
            columns.columns[2].append(text: task.queue)
            columns.columns[3].append(text: task.initialStatus.rawValue)
            columns.columns[4].append(jsonb: task.params)
            columns.columns[5].append(text: task.correlationID)
            columns.columns[6].append(integer: task.maxAttempts)
            columns.columns[7].append(timestamptzMillis: task.createdAtMillis)
            columns.columns[8].append(text: task.submittedBy)
            columns.columns[9].append(text: task.callbackURL)
            // NULL for normal priority, as in the COPY rows (``appendColumns(of:id:status:to:)``).
            columns.columns[10].append(integer: task.priority == .normal ? nil : Int(task.priority.rawValue))
            columns.columns[11].append(text: task.limitKey)
            columns.endRow()
        }
        let chunks = columns.finish()
        return chunks.count == 1 ? chunks[0] : nil
    }

    /// Plain tasks from the columns of ``plainInsertParameters(_:rows:)``, in the order of ``copyColumns``.
    static let plainInsert = """
        INSERT INTO \(copyTarget)
        SELECT id, type, queue, status, params, correlation_id, NULL, 0, max_attempts, created_at, created_at,
               submitted_by, NULL, NULL, callback_url, priority, limit_key
        FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::text[], $7::integer[],
                    $8::timestamptz[], $9::text[], $10::text[], $11::integer[], $12::text[])
             AS n(id, type, queue, status, params, correlation_id, max_attempts, created_at, submitted_by, callback_url, priority, limit_key)
        """

    /// Seeds the hash of an idempotency key's lock, so it cannot equal another advisory lock's key.
    static let idempotencyLockSeed: Int64 = 0x6964_656D  // "idem"

    /// The columns of `COPY tasks` that every new task fills, in order.
    static let copyColumns =
        "id, type, queue, status, params, correlation_id, idempotency_key, attempts, max_attempts, created_at, updated_at, submitted_by, tags, run_at, callback_url, priority, limit_key"

    static let copyTarget = "tasks (\(copyColumns))"

    /// The COPY rows of new tasks, in the order of ``copyColumns``.
    package static func copyRows(_ rows: some Sequence<(NewTask, TaskID)>) -> CopyRows {
        var encoder = CopyRowEncoder(reservingCapacity: rows.underestimatedCount * 200)
        for (task, id) in rows {
            appendColumns(of: task, id: id, status: task.initialStatus, to: &encoder)
            encoder.endRow()
        }
        return encoder.finish()
    }

    /// Appends one new task's ``copyColumns`` to a row (a workflow node appends its own after them).
    static func appendColumns(of task: NewTask, id: TaskID, status: TaskStatus, to encoder: inout CopyRowEncoder) {
        encoder.append(bigint: id.rawValue)
        encoder.append(text: task.type)
        encoder.append(text: task.queue)
        encoder.append(text: status.rawValue)
        encoder.append(jsonb: task.params)
        encoder.append(text: task.correlationID)
        encoder.append(text: task.idempotencyKey)
        encoder.append(integer: 0)
        encoder.append(integer: task.maxAttempts)
        encoder.append(timestamptzMillis: task.createdAtMillis)
        encoder.append(timestamptzMillis: task.createdAtMillis)
        encoder.append(text: task.submittedBy)
        encoder.append(jsonb: task.tags)
        encoder.append(timestamptzMillis: task.runAtMillis)
        encoder.append(text: task.callbackURL)
        // NULL for normal priority: the column stays empty for the common case.
        encoder.append(smallint: task.priority == .normal ? nil : task.priority.rawValue)
        encoder.append(text: task.limitKey)
    }

    /// The COPY rows of the tags of new tasks (none for untagged ones): one row per tag.
    package static func tagCopyRows(_ rows: some Sequence<(NewTask, TaskID)>) -> CopyRows {
        var encoder = CopyRowEncoder()
        for (task, id) in rows {
            guard let tags = task.tags, case .object(let members)? = try? JSONValue.parse(tags) else { continue }
            for (key, value) in members.sorted(by: { $0.key < $1.key }) {
                guard case .string(let text) = value else { continue }
                encoder.append(text: key)
                encoder.append(text: text)
                encoder.append(bigint: id.rawValue)
                encoder.endRow()
            }
        }
        return encoder.finish()
    }

    public func get(_ id: TaskID) async throws -> TaskRecord? {
        try await client.withSession { session in
            let rows = try session.query("""
                SELECT id, type, queue, status, attempts, max_attempts, params::text, result::text, error,
                       correlation_id, idempotency_key,
                       \(Self.rfc3339("created_at")), \(Self.rfc3339("updated_at")),
                       \(Self.rfc3339("started_at")), \(Self.rfc3339("finished_at")), submitted_by, tags::text, progress::text,
                       \(Self.rfc3339("run_at")), callback_url, priority, limit_key, workflow_id
                FROM tasks WHERE id = $1
                """, [id.description], name: "get task")
            guard let row = rows.rows.first else { return nil }
            return TaskRecord(
                id: id, type: row[1] ?? "", queue: row[2] ?? "",
                status: row[3].flatMap(TaskStatus.init(rawValue:)) ?? .queued,
                attempts: row[4].flatMap { Int($0) } ?? 0, maxAttempts: row[5].flatMap { Int($0) } ?? 0,
                params: row[6] ?? "null", result: row[7], error: row[8], correlationID: row[9] ?? "",
                idempotencyKey: row[10], createdAt: row[11] ?? "", updatedAt: row[12] ?? "",
                startedAt: row[13], finishedAt: row[14], submittedBy: row[15], tags: row[16], progress: row[17],
                runAt: row[18], callbackURL: row[19],
                priority: row[20].flatMap { TaskPriority(text: $0) } ?? .normal, limitKey: row[21],
                workflowID: row[22].flatMap { Int64($0) })
        }
    }

    /// Task counts by status, optionally only for tasks created at or after `sinceMillis`.
    public func countByStatus(sinceMillis: Int64? = nil) async throws -> [TaskStatus: Int] {
        try await client.withSession { session in
            let rows: PostgresRows
            if let sinceMillis {
                rows = try session.query(
                    "SELECT status, count(*) FROM tasks WHERE created_at >= $1 GROUP BY status",
                    [PostgresTimestamp.text(millis: sinceMillis)], name: "count by status")
            } else {
                rows = try session.query("SELECT status, count(*) FROM tasks GROUP BY status", name: "count by status")
            }
            var counts: [TaskStatus: Int] = [:]
            for row in rows.rows {
                if let status = row[0].flatMap(TaskStatus.init(rawValue:)), let count = row[1].flatMap({ Int($0) }) {
                    counts[status] = count
                }
            }
            return counts
        }
    }

    /// `SELECT 1`: is PostgreSQL reachable?
    public func ping() async throws {
        _ = try await client.withSession { session in try session.query("SELECT 1", name: "ping").rows.count }
    }

    static func rfc3339(_ column: String) -> String {
        "to_char(\(column) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
    }
}

extension TaskStore {
    /// Deletes tasks that were committed but never reached Redis and have not moved since; returns the
    /// ids deleted (a task an agent already started, from a pipeline Redis applied in part, stays).
    public func deleteUndispatched(_ ids: [TaskID]) async throws -> Set<TaskID> {
        let literal = PostgresArrayLiteral.integers(ids.map(\.rawValue))
        return try await client.withSession { session in
            let rows = try session.query(
                "DELETE FROM tasks WHERE id = ANY($1::bigint[]) AND status IN ('queued', 'scheduled') AND NOT dispatched RETURNING id",
                [literal], name: "withdraw tasks").rows
            return Set(rows.compactMap { $0[0].flatMap { TaskID($0) } })
        }
    }
}

/// A dead task moved back to `queued` by a redrive: what its next attempt's stream entry needs.
public struct RedrivenTask: Sendable, Hashable {
    public var id: TaskID
    public var type: String
    public var queue: String
    public var params: String
    public var correlationID: String
    /// Attempts made so far; the redriven attempt is the next one.
    public var attempts: Int
    public var maxAttempts: Int
    public var previousMaxAttempts: Int
    public var hasCallback = false
    public var priority: TaskPriority = .normal
    public var limitKey: String?
    /// A workflow node's dependencies and their results (JSON object text).
    public var dependencies: String?
    /// What a revert puts back: `dead`, or `failed` for a failed task a bulk retry took.
    public var previousStatus: TaskStatus = .dead
}

extension TaskStore {
    /// Moves `dead` tasks back to `queued` with a fresh budget of attempts (`freshAttempts(type)` more),
    /// keeping their id, attempt count and history. Tasks that are not dead are left alone. A workflow
    /// node's workflow carries on: it is running again, and the nodes its death failed or skipped
    /// without running wait for it again.
    ///
    /// - Parameter finishedWithin: only tasks that died at most this long ago (nil: any); retention
    ///   counts on a redrive never reviving a task it is about to drop.
    /// - Parameter includingFailed: retry `failed` tasks too (a bulk retry does), except workflow nodes
    ///   that failed because a dependency did without running themselves: their workflow's retry runs
    ///   their dependencies first.
    public func redrive(
        _ ids: [TaskID], finishedWithin: Duration? = nil, includingFailed: Bool = false,
        freshAttempts: @escaping @Sendable (String) -> Int
    ) async throws -> [RedrivenTask] {
        guard !ids.isEmpty else { return [] }
        let literal = PostgresArrayLiteral.integers(ids.map(\.rawValue))
        return try await client.withSession { session in
            try session.transaction { () throws(PostgresError) -> [RedrivenTask] in
                let rows = try session.query("""
                    SELECT id, type, queue, params::text, correlation_id, attempts, max_attempts, callback_url IS NOT NULL,
                           priority, limit_key,
                           workflow_id IS NOT NULL, status
                    FROM tasks WHERE id = ANY($1::bigint[])
                      AND (status = 'dead' OR ($3::boolean AND status = 'failed' AND (workflow_id IS NULL OR failed_deps = 0)))
                      AND ($2::bigint IS NULL OR finished_at IS NULL OR finished_at > now() - $2::bigint * interval '1 millisecond')
                    ORDER BY id FOR UPDATE
                    """, [literal, finishedWithin.map { String($0.milliseconds) }, includingFailed ? "t" : "f"], name: "find dead tasks").rows
                var tasks: [RedrivenTask] = []
                var nodes: [TaskID] = []
                for row in rows {
                    guard let id = row[0].flatMap({ TaskID($0) }), let type = row[1], let queue = row[2],
                        let attempts = row[5].flatMap({ Int($0) }), let max = row[6].flatMap({ Int($0) })
                    else { continue }
                    tasks.append(RedrivenTask(
                        id: id, type: type, queue: queue, params: row[3] ?? "{}", correlationID: row[4] ?? "",
                        attempts: attempts, maxAttempts: attempts + freshAttempts(type), previousMaxAttempts: max,
                        hasCallback: row[7] == "t", priority: row[8].flatMap { TaskPriority(text: $0) } ?? .normal, limitKey: row[9],
                        dependencies: nil, previousStatus: row[11].flatMap(TaskStatus.init(rawValue:)) ?? .dead))
                    if row[10] == "t" { nodes.append(id) }
                }
                if !nodes.isEmpty {
                    let dependencies = try Self.dependencies(of: nodes, on: session)
                    for index in tasks.indices { tasks[index].dependencies = dependencies[tasks[index].id] }
                }
                guard !tasks.isEmpty else { return [] }
                var encoder = CopyRowEncoder()
                for task in tasks {
                    encoder.append(bigint: task.id.rawValue)
                    encoder.append(integer: task.maxAttempts)
                    encoder.endRow()
                }
                try session.execute("CREATE TEMP TABLE IF NOT EXISTS conveyor_redrive (id bigint, max_attempts integer) ON COMMIT DELETE ROWS", name: "redrive temp table")
                try session.copy(into: "conveyor_redrive (id, max_attempts)", encoder.finish(), name: "copy redrive")
                _ = try session.query("""
                    UPDATE tasks t SET status = 'queued', max_attempts = r.max_attempts, updated_at = now(), finished_at = NULL,
                        -- Not known to be in Redis until the redrive script has run: should the script and the
                        -- revert both fail, the Reconciler finds the row and dispatches it.
                        redrive_floor = t.attempts, dispatched = false
                    FROM conveyor_redrive r WHERE t.id = r.id
                    """, name: "redrive tasks")
                try Self.recordAdminEvents(tasks.map { ($0.id, $0.attempts, $0.correlationID) }, status: "redriven", error: nil, on: session)
                if !nodes.isEmpty {
                    // The workflow rows are locked first (a WorkflowAdvancer ending one meanwhile either
                    // sees the redrive or waits for it), then running again.
                    let literal = PostgresArrayLiteral.integers(nodes.map(\.rawValue))
                    _ = try session.query("""
                        SELECT id FROM workflows WHERE id IN (SELECT workflow_id FROM tasks WHERE id = ANY($1::bigint[]))
                        ORDER BY id FOR UPDATE
                        """, [literal], name: "lock redriven workflows")
                    _ = try session.query("""
                        UPDATE workflows SET status = 'running', finished_at = NULL, updated_at = now()
                        WHERE id IN (SELECT workflow_id FROM tasks WHERE id = ANY($1::bigint[])) AND status <> 'running'
                        """, [literal], name: "reopen redriven workflows")
                    // Its dependants wait for it again: those its death ended, and those still waiting,
                    // counted again. None of them can start before it ends.
                    _ = try WorkflowStore.reopen(try WorkflowStore.nodesEndedBy(nodes, on: session), redriven: nodes, on: session)
                }
                return tasks
            }
        }
    }

    /// A page of the ids of dead tasks (of one type, when given) after `afterID`, and where the next
    /// page starts (nil at the end). Walks the primary key, filtering: a rare admin action, and an index
    /// on the status would make every update of a task's status a non-HOT one.
    public func deadTasks(after afterID: TaskID?, type: String?, limit: Int) async throws -> (ids: [TaskID], lastID: TaskID?) {
        let rows = try await client.withSession { session in
            try session.query("""
                SELECT id FROM tasks WHERE id > $1 AND status = 'dead' AND ($2::text IS NULL OR type = $2)
                ORDER BY id LIMIT $3
                """, [String(afterID?.rawValue ?? 0), type, String(limit)], name: "dead tasks").rows
        }
        let ids = rows.compactMap { $0[0].flatMap { TaskID($0) } }
        return (ids, ids.count == limit ? ids.last : nil)
    }

    /// Undoes ``redrive(_:freshAttempts:)`` for tasks whose next attempt could not be dispatched. A
    /// workflow node is dead again as far as its workflow goes too: the join decides its dependants
    /// again (returned, to be carried out).
    @discardableResult
    public func revertRedrive(_ tasks: [RedrivenTask]) async throws -> WorkflowAdvance {
        var advance = WorkflowAdvance()
        for task in tasks {
            let decided = try await client.withSession { session in
                try session.transaction { () throws(PostgresError) -> WorkflowAdvance in
                    let row = try session.query(
                        "UPDATE tasks SET status = $3, max_attempts = $2, dispatched = true, finished_at = COALESCE(finished_at, now()) WHERE id = $1 AND status = 'queued' RETURNING workflow_id",
                        [task.id.description, String(task.previousMaxAttempts), task.previousStatus.rawValue], name: "revert redrive").rows.first
                    // Its streams and waits see it dead again.
                    try TaskNotifications.notify([task.id.description], on: session)
                    guard let workflow = row?[0].flatMap({ WorkflowID($0) }) else { return WorkflowAdvance() }
                    return try WorkflowAdvance.settle([task.id], of: [workflow], on: session)
                }
            }
            advance.merge(decided)
        }
        return advance
    }

    /// The status of a task, or nil when there is none.
    public func status(of id: TaskID) async throws -> TaskStatus? {
        try await client.withSession { session in
            try session.query("SELECT status FROM tasks WHERE id = $1", [id.description], name: "task status")
                .rows.first?[0].flatMap(TaskStatus.init(rawValue:))
        }
    }
}

extension TaskStore {
    /// The queue and status of a task, or nil when there is none.
    public func queueAndStatus(of id: TaskID) async throws -> (queue: String, status: TaskStatus)? {
        try await client.withSession { session -> (queue: String, status: TaskStatus)? in
            guard let row = try session.query("SELECT queue, status FROM tasks WHERE id = $1", [id.description], name: "task queue").rows.first,
                let queue = row[0], let status = row[1].flatMap(TaskStatus.init(rawValue:))
            else { return nil }
            return (queue, status)
        }
    }

    /// Marks a task `cancelled` unless it has already finished; returns nil when it had, else what the
    /// cancel decided for the task's workflow (nothing for a plain task). The change is an event of the
    /// task's history too, wakes its live streams and waits, and queues its completion webhook if it has
    /// one. A workflow node's dependants are decided in the same transaction, as for any node's end.
    public func cancel(_ id: TaskID) async throws -> WorkflowAdvance? {
        try await client.withSession { session in
            try session.transaction { () throws(PostgresError) -> WorkflowAdvance? in
                guard let row = try session.query("""
                    UPDATE tasks SET status = 'cancelled', updated_at = now(), finished_at = now(), error = 'cancelled', dispatched = true
                    WHERE id = $1 AND status NOT IN ('succeeded', 'failed', 'dead', 'cancelled', 'skipped')
                    RETURNING attempts, correlation_id, callback_url IS NOT NULL, workflow_id
                    """, [id.description], name: "cancel task").rows.first
                else { return nil }
                try Self.recordAdminEvents([(id, row[0].flatMap { Int($0) } ?? 0, row[1] ?? "")], status: "cancelled", error: "cancelled", on: session)
                if row[2] == "t" { _ = try WebhookStore.queue([id], on: session) }
                guard let workflow = row[3].flatMap({ WorkflowID($0) }) else { return WorkflowAdvance() }
                return try WorkflowAdvance.settle([id], of: [workflow], on: session)
            }
        }
    }

    /// Appends the events the API caused (a cancel, a redrive) to the tasks' histories and notifies their
    /// watchers, inside the caller's transaction: one statement for the rows, one for the notifications.
    /// Ids are deterministic like an agent's: an agent reporting the same cancel later collides and is skipped.
    static func recordAdminEvents(
        _ tasks: [(id: TaskID, attempt: Int, correlationID: String)], status: String, error: String?, on session: PostgresSession
    ) throws(PostgresError) {
        guard !tasks.isEmpty else { return }
        let details = tasks.map { task -> String in
            var detail = "{\"cid\":"
            JSONValue.writeString(task.correlationID, into: &detail)
            if let error {
                detail += ",\"error\":"
                JSONValue.writeString(error, into: &detail)
            }
            return detail + "}"
        }
        _ = try session.query("""
            INSERT INTO task_events (event_id, task_id, status, attempt, agent, at, detail)
            SELECT e.task_id || '-' || e.attempt || '-' || $3::text, e.task_id, $3::text, e.attempt, 'api', date_trunc('milliseconds', now()), e.detail::jsonb
            FROM unnest($1::bigint[], $2::integer[], $4::text[]) AS e(task_id, attempt, detail)
            ON CONFLICT DO NOTHING
            """, [
                PostgresArrayLiteral.integers(tasks.map(\.id.rawValue)), PostgresArrayLiteral.integers(tasks.map { Int64($0.attempt) }),
                status, PostgresArrayLiteral.text(details),
            ], name: "record admin events")
        try TaskNotifications.notify(TaskNotifications.payloads(for: tasks.map(\.id)), on: session)
    }
}
