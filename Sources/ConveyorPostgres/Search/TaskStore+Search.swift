import ConveyorCore

extension TaskStore {
    /// The largest page a search returns.
    public static let maximumPageSize = 500

    /// One page of the tasks matching `filter`, newest first (by id, which follows submission order),
    /// starting below `cursor`. See ``TaskSearchPlan`` for how a page is found and why it may be short.
    public func search(_ filter: TaskFilter, limit: Int, before cursor: TaskID? = nil) async throws -> TaskPage {
        let plan = TaskSearchPlan(filter: filter, limit: min(max(limit, 1), Self.maximumPageSize))
        return try await client.withSession { session in try Self.search(plan, before: cursor, on: session) }
    }

    static func search(_ plan: TaskSearchPlan, before cursor: TaskID?, on session: PostgresSession) throws(PostgresError) -> TaskPage {
        var upper = cursor?.rawValue ?? Int64.max
        var lower: Int64 = 0
        if plan.needsIDBounds {
            let (sql, parameters) = plan.idBoundsQuery()
            if let row = try session.query(sql, parameters, name: "search id bounds").rows.first {
                if let bound = row[0].flatMap({ Int64($0) }) { upper = min(upper, bound) }
                if let bound = row[1].flatMap({ Int64($0) }) { lower = max(lower, bound) }
            }
        }
        guard upper > lower + 1 else { return TaskPage(tasks: [], nextCursor: nil) }
        let (candidateSQL, candidateParameters) = plan.candidatesQuery(below: upper, above: lower)
        let candidates = try session.query(candidateSQL, candidateParameters, name: "search candidates").rows.compactMap { row in
            row[1].flatMap { TaskID($0) }.map { (branch: row[0] ?? "", id: $0) }
        }
        let horizon = plan.horizon(of: candidates)
        let ids = candidates.map(\.id).filter { horizon == nil || $0 >= horizon! }
        guard !ids.isEmpty else { return TaskPage(tasks: [], nextCursor: horizon) }
        let (rowSQL, rowParameters) = plan.rowsQuery(ids: ids)
        var tasks = try session.query(rowSQL, rowParameters, name: "search rows").rows.compactMap(Self.summary)
        if tasks.count > plan.limit {
            tasks.removeLast(tasks.count - plan.limit)
            return TaskPage(tasks: tasks, nextCursor: tasks.last?.id)
        }
        return TaskPage(tasks: tasks, nextCursor: horizon)
    }

    private static func summary(_ row: [String?]) -> TaskSummary? {
        guard let id = row[0].flatMap({ TaskID($0) }), let status = row[3].flatMap(TaskStatus.init(rawValue:)) else { return nil }
        return TaskSummary(
            id: id, type: row[1] ?? "", queue: row[2] ?? "", status: status,
            attempts: row[4].flatMap { Int($0) } ?? 0, maxAttempts: row[5].flatMap { Int($0) } ?? 0,
            correlationID: row[6] ?? "", idempotencyKey: row[7], createdAt: row[8] ?? "", updatedAt: row[9] ?? "",
            finishedAt: row[10], error: row[11], tags: row[12], workflowID: row[13].flatMap { Int64($0) })
    }
}
