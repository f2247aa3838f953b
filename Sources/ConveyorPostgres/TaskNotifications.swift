import ConveyorCore

/// The one path by which a coordinator learns that a task changed, whoever recorded the change:
/// `NOTIFY conveyor_tasks` with the changed task ids, sent inside the transaction that records them, so
/// a listener hears of a change only once it is committed (DESIGN §8: notifications fan out once).
///
/// A batch of a few thousand events costs one extra statement with a few payloads, whether anyone
/// listens or not; a coordinator with live streams or waits listens on one connection of its own.
public enum TaskNotifications {
    public static let channel = "conveyor_tasks"

    /// PostgreSQL refuses payloads of 8,000 bytes or more.
    static let maximumPayloadBytes = 7_900

    /// Comma-separated ids, split into payloads that fit, each id once.
    package static func payloads(for ids: some Sequence<TaskID>) -> [String] {
        var seen = Set<TaskID>()
        var payloads: [String] = []
        var current = ""
        for id in ids where seen.insert(id).inserted {
            let text = id.description
            if !current.isEmpty, current.utf8.count + 1 + text.utf8.count > maximumPayloadBytes {
                payloads.append(current)
                current = ""
            }
            if !current.isEmpty { current += "," }
            current += text
        }
        if !current.isEmpty { payloads.append(current) }
        return payloads
    }

    /// The ids of one payload; malformed parts are skipped.
    public static func ids(in payload: String) -> [TaskID] {
        payload.split(separator: ",").compactMap { TaskID(String($0)) }
    }

    /// Queues the notifications in the session's open transaction: delivered at COMMIT, dropped by a
    /// rollback. One statement for every payload.
    package static func notify(_ payloads: [String], on session: PostgresSession) throws(PostgresError) {
        guard !payloads.isEmpty else { return }
        _ = try session.query(
            "SELECT pg_notify('\(channel)', p) FROM unnest($1::text[]) AS p",
            [PostgresArrayLiteral.text(payloads)], name: "notify task changes")
    }
}
