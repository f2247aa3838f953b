import ConveyorCore

/// How one page of a search is found, in two statements that each cost the same at ten million rows
/// as at a thousand:
///
/// 1. **Candidates.** The most selective filter an index answers (the *driver*) yields task ids newest
///    first, from one or more index ranges (*branches*: one per status of a status filter), each cut to
///    a bound. A filter no index answers (a queue, a type, error text, a time range) walks the primary key.
/// 2. **Rows.** Those ids' rows are read by primary key and every filter is checked again on them, so
///    a page shows only what PostgreSQL holds now.
///
/// When every filter is the driver's, a branch needs only `limit + 1` ids. Otherwise the candidates
/// are bounded by ``candidateBudget`` and the page may come back short with a cursor to go on from:
/// the price of a bounded page for filters no index answers. The cursor is a task id; pages never use OFFSET.
public struct TaskSearchPlan: Sendable, Equatable {
    /// The index a search walks.
    public enum Driver: Sendable, Equatable {
        /// `tasks_idempotency_key`.
        case idempotencyKey
        /// `tasks_correlation (correlation_id, id) WHERE dispatched`, and the newest of the backlog not yet
        /// dispatched (`tasks_undispatched`).
        case correlationID
        /// `task_tags (key, value, task_id)`, for the first tag.
        case tag
        /// `task_attention (status, task_id)`: every status asked for is one it holds.
        case statuses([TaskStatus])
        /// The primary key, newest first.
        case primaryKey
    }

    /// The statuses `task_attention` holds (migration 9): those people look for and that stay few.
    public static let attentionStatuses: Set<TaskStatus> = [.scheduled, .retrying, .failed, .dead, .cancelled, .skipped]
    /// Most candidate ids one page examines when a filter is checked only on the rows.
    public static let candidateBudget = 2_000
    /// How far a task's creation time may lag its id's place: a reserved block of ids is used for up to
    /// a minute (``TaskIDAllocator/maximumBlockAge``), plus a minute for clock skew between coordinators.
    public static let idTimeSlackSeconds = 120

    public let filter: TaskFilter
    public let limit: Int
    public let driver: Driver

    public init(filter: TaskFilter, limit: Int) {
        self.filter = filter
        self.limit = limit
        if filter.idempotencyKey != nil {
            driver = .idempotencyKey
        } else if filter.correlationID != nil {
            driver = .correlationID
        } else if !filter.tags.isEmpty {
            driver = .tag
        } else if !filter.statuses.isEmpty, filter.statuses.isSubset(of: Self.attentionStatuses) {
            driver = .statuses(filter.statuses.sorted { $0.rawValue < $1.rawValue })
        } else {
            driver = .primaryKey
        }
    }

    /// Whether some filter is not the driver's own: then candidates are bounded by the budget, not the limit.
    public var hasResidualFilter: Bool {
        var rest = filter
        switch driver {
        case .idempotencyKey: rest.idempotencyKey = nil
        case .correlationID: rest.correlationID = nil
        case .tag: rest.tags.removeFirst()
        case .statuses: rest.statuses = []
        case .primaryKey: break
        }
        return !rest.isEmpty
    }

    /// How many ids each branch yields at most.
    public var branchLimit: Int {
        guard hasResidualFilter else { return limit + 1 }
        let branches: Int
        if case .statuses(let statuses) = driver { branches = statuses.count } else { branches = 1 }
        return max(limit + 1, Self.candidateBudget / branches)
    }

    /// Whether the filter has a time that bounds the ids (see `conveyor_task_id_bound`).
    public var needsIDBounds: Bool {
        filter.createdAfter != nil || filter.createdBefore != nil || filter.finishedBefore != nil
    }

    /// The statement that turns the filter's times into id bounds: `(upper exclusive, lower exclusive)`,
    /// either NULL when the filter has no such time.
    public func idBoundsQuery() -> (sql: String, parameters: [String?]) {
        let before = [filter.createdBefore, filter.finishedBefore].compactMap { $0 }.min()
        let slack = "'\(Self.idTimeSlackSeconds) seconds'::interval"
        return ("""
            SELECT CASE WHEN $1::timestamptz IS NULL THEN NULL ELSE conveyor_task_id_bound($1::timestamptz, true, \(slack)) END,
                   CASE WHEN $2::timestamptz IS NULL THEN NULL ELSE conveyor_task_id_bound($2::timestamptz, false, \(slack)) END
            """, [
                // Inclusive "at or before": every id at or past the bound was created after `before`.
                before.map { PostgresTimestamp.text(millis: $0 + 1) },
                filter.createdAfter.map { PostgresTimestamp.text(millis: $0) },
            ])
    }

    /// Step 1: rows of `(branch, id)`, each branch newest first and at most ``branchLimit`` long.
    /// `$1` is the exclusive upper id, `$2` the exclusive lower id.
    public func candidatesQuery(below upper: Int64, above lower: Int64) -> (sql: String, parameters: [String?]) {
        var parameters: [String?] = [String(upper), String(lower)]
        func bind(_ value: String) -> String {
            parameters.append(value)
            return "$\(parameters.count)"
        }
        let range = "id < $1 AND id > $2"
        let cut = "ORDER BY id DESC LIMIT \(branchLimit)"
        let sql: String
        switch driver {
        case .idempotencyKey:
            sql = "SELECT '', id FROM tasks WHERE idempotency_key = \(bind(filter.idempotencyKey ?? "")) AND \(range) \(cut)"
        case .correlationID:
            // Two branches: dispatched tasks by the index (they enter it at their first event), and the
            // newest `candidateBudget` of the backlog not yet dispatched, checked one by one.
            let id = bind(filter.correlationID ?? "")
            sql = """
                (SELECT 'dispatched', id FROM tasks WHERE correlation_id = \(id) AND dispatched AND \(range) \(cut))
                UNION ALL
                (SELECT 'backlog', b.id FROM (
                    SELECT id, correlation_id FROM tasks WHERE NOT dispatched ORDER BY created_at DESC LIMIT \(Self.candidateBudget)
                ) b WHERE b.correlation_id = \(id) AND b.id < $1 AND b.id > $2 ORDER BY b.id DESC LIMIT \(branchLimit))
                """
        case .tag:
            let tag = filter.tags[0]
            sql = """
                SELECT '', task_id FROM task_tags WHERE key = \(bind(tag.key)) AND value = \(bind(tag.value))
                  AND task_id < $1 AND task_id > $2 ORDER BY task_id DESC LIMIT \(branchLimit)
                """
        case .statuses(let statuses):
            sql = statuses.map { status in
                """
                (SELECT '\(status.rawValue)', task_id FROM task_attention WHERE status = '\(status.rawValue)'
                   AND task_id < $1 AND task_id > $2 ORDER BY task_id DESC LIMIT \(branchLimit))
                """
            }.joined(separator: " UNION ALL ")
        case .primaryKey:
            sql = "SELECT '', id FROM tasks WHERE \(range) \(cut)"
        }
        return (sql, parameters)
    }

    /// Step 2: the rows of `ids` that match every filter, newest first, at most `limit + 1`.
    public func rowsQuery(ids: [TaskID]) -> (sql: String, parameters: [String?]) {
        var parameters: [String?] = [PostgresArrayLiteral.integers(ids.map(\.rawValue))]
        func bind(_ value: String) -> String {
            parameters.append(value)
            return "$\(parameters.count)"
        }
        var conditions = ["id = ANY($1::bigint[])"]
        if !filter.statuses.isEmpty {
            conditions.append("status = ANY(\(bind(PostgresArrayLiteral.text(filter.statuses.map(\.rawValue).sorted())))::text[])")
        }
        if let type = filter.type { conditions.append("type = \(bind(type))") }
        if let queue = filter.queue { conditions.append("queue = \(bind(queue))") }
        for tag in filter.tags { conditions.append("tags ->> \(bind(tag.key)) = \(bind(tag.value))") }
        if let id = filter.correlationID { conditions.append("correlation_id = \(bind(id))") }
        if let key = filter.idempotencyKey { conditions.append("idempotency_key = \(bind(key))") }
        if let at = filter.createdAfter { conditions.append("created_at >= \(bind(PostgresTimestamp.text(millis: at)))::timestamptz") }
        if let at = filter.createdBefore { conditions.append("created_at <= \(bind(PostgresTimestamp.text(millis: at)))::timestamptz") }
        if let at = filter.finishedAfter { conditions.append("finished_at >= \(bind(PostgresTimestamp.text(millis: at)))::timestamptz") }
        if let at = filter.finishedBefore { conditions.append("finished_at <= \(bind(PostgresTimestamp.text(millis: at)))::timestamptz") }
        if let text = filter.errorContains { conditions.append("error ILIKE '%' || \(bind(Self.likeEscaped(text))) || '%'") }
        if let owner = filter.submittedBy { conditions.append("submitted_by = \(bind(owner))") }
        let sql = """
            SELECT id, type, queue, status, attempts, max_attempts, correlation_id, idempotency_key,
                   \(TaskStore.rfc3339("created_at")), \(TaskStore.rfc3339("updated_at")), \(TaskStore.rfc3339("finished_at")),
                   left(error, \(TaskSummary.errorPreviewLength)), tags::text, workflow_id
            FROM tasks WHERE \(conditions.joined(separator: " AND "))
            ORDER BY id DESC LIMIT \(limit + 1)
            """
        return (sql, parameters)
    }

    /// `text` with LIKE's wildcards and escape character taken literally.
    static func likeEscaped(_ text: String) -> String {
        var out = ""
        for character in text {
            if character == "\\" || character == "%" || character == "_" { out.append("\\") }
            out.append(character)
        }
        return out
    }

    /// Where the candidates of step 1 can be trusted to be complete: at or above the highest last id of
    /// a branch that was cut (below it, that branch has ids it did not yield). Nil: no branch was cut.
    public func horizon(of candidates: [(branch: String, id: TaskID)]) -> TaskID? {
        var counts: [String: (count: Int, lowest: TaskID)] = [:]
        for candidate in candidates {
            let seen = counts[candidate.branch]
            counts[candidate.branch] = ((seen?.count ?? 0) + 1, min(seen?.lowest ?? candidate.id, candidate.id))
        }
        return counts.values.filter { $0.count >= branchLimit }.map(\.lowest).max()
    }
}
