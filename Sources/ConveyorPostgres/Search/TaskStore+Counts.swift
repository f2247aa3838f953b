import ConveyorCore

extension TaskStore {
    /// What a capped count groups by.
    public enum CountColumn: String, Sendable {
        case type, queue
    }

    /// Counts of the newest `cap` tasks in `status` (one of the statuses `task_attention` holds), by
    /// type or queue, largest first: one bounded walk of that index, so the console's dead-letter and
    /// overview pages cost the same whatever the history holds. A count equal to the cap means "at least".
    public func counts(of status: TaskStatus, by column: CountColumn, cap: Int) async throws -> [(value: String, count: Int)] {
        precondition(TaskSearchPlan.attentionStatuses.contains(status), "\(status) is not in task_attention")
        return try await client.withSession { session in
            try session.query("""
                SELECT t.\(column.rawValue), count(*) FROM (
                    SELECT task_id FROM task_attention WHERE status = $2 ORDER BY task_id DESC LIMIT $1
                ) newest JOIN tasks t ON t.id = newest.task_id AND t.status = $2 GROUP BY 1 ORDER BY 2 DESC, 1
                """, [String(cap), status.rawValue], name: "capped counts").rows.compactMap { row in
                guard let value = row[0], let count = row[1].flatMap({ Int($0) }) else { return nil }
                return (value, count)
            }
        }
    }
}
