import ConveyorCore

/// One row of a task's history (`task_events`), as `GET /v1/tasks/{id}/events` and the live stream
/// read it.
public struct HistoryRow: Sendable, Hashable {
    public var eventID: String
    /// A ``TaskStatus`` raw value, `progress`, or `redriven`.
    public var status: String
    public var attempt: Int
    public var agent: String
    public var atMillis: Int64
    /// The event's detail as JSON text (correlation id, error, result, times, progress).
    public var detail: String?
    /// True for an outcome whose attempt left no `running` row: the agent folded the start into it
    /// (a fast task), so the timeline shows the start from the outcome's detail.
    public var foldsStart: Bool

    public init(eventID: String, status: String, attempt: Int, agent: String, atMillis: Int64, detail: String?, foldsStart: Bool) {
        self.eventID = eventID
        self.status = status
        self.attempt = attempt
        self.agent = agent
        self.atMillis = atMillis
        self.detail = detail
        self.foldsStart = foldsStart
    }

    /// Where the row stands in the history's order; a page or a stream resumes after it.
    public var cursor: HistoryCursor { HistoryCursor(atMillis: atMillis, eventID: eventID) }
}

/// A position in a task's history: rows are ordered by (time, event id).
public struct HistoryCursor: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var atMillis: Int64
    public var eventID: String

    public init(atMillis: Int64, eventID: String) {
        self.atMillis = atMillis
        self.eventID = eventID
    }

    /// `<ms>.<event id>`: opaque to clients, who send it back as `after` or `Last-Event-ID`.
    public var description: String { "\(atMillis).\(eventID)" }

    public init?(_ text: String) {
        guard let dot = text.firstIndex(of: "."), let at = Int64(text[..<dot]) else { return nil }
        let id = String(text[text.index(after: dot)...])
        guard id.utf8.count <= 200, !id.utf8.contains(where: { $0 < 0x20 }) else { return nil }
        self.init(atMillis: at, eventID: id)
    }

    public static func < (lhs: HistoryCursor, rhs: HistoryCursor) -> Bool {
        (lhs.atMillis, lhs.eventID) < (rhs.atMillis, rhs.eventID)
    }
}

extension TaskStore {
    /// Up to `limit` rows of a task's history after `cursor`, oldest first. One index range on the
    /// task's own partition: a page costs the same however large the table.
    public func history(of id: TaskID, after cursor: HistoryCursor, limit: Int) async throws -> [HistoryRow] {
        let after = PostgresTimestamp.text(millis: cursor.atMillis)
        let rows = try await client.withSession { session in
            try session.query("""
                SELECT e.event_id, e.status, e.attempt, e.agent, (extract(epoch FROM e.at) * 1000)::bigint, e.detail::text,
                       e.status NOT IN ('running', 'progress', 'redriven', 'queued') AND e.agent <> 'api'
                       AND NOT EXISTS (SELECT 1 FROM task_events r WHERE r.task_id = e.task_id AND r.attempt = e.attempt AND r.status = 'running')
                FROM task_events e
                WHERE e.task_id = $1 AND (e.at, e.event_id) > ($2::timestamptz, $3)
                ORDER BY e.at, e.event_id
                LIMIT $4
                """, [id.description, after, cursor.eventID, String(limit)], name: "task history").rows
        }
        return rows.compactMap { row in
            guard let eventID = row[0], let status = row[1], let attempt = row[2].flatMap({ Int($0) }),
                let at = row[4].flatMap({ Int64($0) })
            else { return nil }
            return HistoryRow(
                eventID: eventID, status: status, attempt: attempt, agent: row[3] ?? "", atMillis: at, detail: row[5],
                foldsStart: row[6] == "t")
        }
    }
}
