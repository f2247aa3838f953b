import ConveyorCore
import ConveyorPostgres

/// A task's history as its caller reads it: one item per step (queued, dispatched, running, progress,
/// retrying, redriven, and the outcome), oldest first. Shared by `GET /v1/tasks/{id}/events` and the
/// live stream, so both tell the same story.
///
/// Each history row becomes one to three items (a fast attempt's row carries its dispatch and start);
/// all items of a row share the row's cursor, so a page or a resumed stream never splits a row.
struct TimelineItem: Sendable, Hashable {
    var kind: String
    var cursor: String
    /// The item as a JSON object.
    var json: String

    var isTerminal: Bool { TaskStatus(rawValue: kind)?.isTerminal ?? false }
}

enum TaskTimeline {
    /// The first item of every task's history, from its row: it was queued when it was created.
    /// Its cursor sorts before every history row.
    static let queuedCursor = HistoryCursor(atMillis: 0, eventID: "")

    /// A scheduled task's first item is `scheduled` (with its `run_at`); its release, recorded by the
    /// Forwarder, is a `queued` row later in the history.
    static func queued(_ task: TaskRecord) -> TimelineItem {
        let kind = task.runAt == nil ? "queued" : "scheduled"
        var json = "{\"id\":\"\(queuedCursor)\",\"kind\":\"\(kind)\",\"at\":\(string(task.createdAt)),\"attempt\":0"
        if let runAt = task.runAt { json += ",\"run_at\":\(string(runAt))" }
        json += "}"
        return TimelineItem(kind: kind, cursor: queuedCursor.description, json: json)
    }

    /// A terminal item made from the task's row, for a task whose row says it is finished while its
    /// history has no such step (it finished before histories recorded cancels, say).
    static func outcome(_ task: TaskRecord, after cursor: HistoryCursor) -> TimelineItem {
        let at = task.finishedAt ?? task.updatedAt
        let id = HistoryCursor(atMillis: cursor.atMillis, eventID: cursor.eventID + "~").description
        var json = "{\"id\":\(string(id)),\"kind\":\"\(task.status.rawValue)\",\"at\":\(string(at)),\"attempt\":\(task.attempts)"
        if let error = task.error { json += ",\"error\":\(string(error))" }
        if let result = task.result { json += ",\"result\":\(result)" }
        json += "}"
        return TimelineItem(kind: task.status.rawValue, cursor: id, json: json)
    }

    static func items(_ row: HistoryRow) -> [TimelineItem] {
        let detail = row.detail.flatMap { try? JSONValue.parse($0) }
        let cursor = row.cursor.description
        func item(_ kind: String, at: Int64, extra: String = "") -> TimelineItem {
            var json = "{\"id\":\(string(cursor)),\"kind\":\"\(kind)\",\"at\":\"\(UTCTime.format(millis: at))\",\"attempt\":\(row.attempt)"
            if !row.agent.isEmpty { json += ",\"agent\":\(string(row.agent))" }
            json += extra + "}"
            return TimelineItem(kind: kind, cursor: cursor, json: json)
        }
        var items: [TimelineItem] = []
        func start(at started: Int64) {
            if let dispatched = detail?["dispatched"]?.intValue { items.append(item("dispatched", at: dispatched)) }
            items.append(item("running", at: started))
        }
        switch row.status {
        case "running":
            start(at: row.atMillis)
        case "progress":
            let progress = detail?["progress"].map(\.serialized) ?? "null"
            items.append(item("progress", at: row.atMillis, extra: ",\"progress\":\(progress)"))
        case "redriven":
            items.append(item("redriven", at: row.atMillis))
        case "webhook":
            // One try of the completion webhook: its outcome, the receiver's status code or the error.
            var extra = ""
            for key in ["delivery", "url", "outcome", "error"] {
                if let value = detail?[key]?.stringValue { extra += ",\"\(key)\":\(string(value))" }
            }
            if let tryNumber = detail?["try"]?.intValue { extra += ",\"try\":\(tryNumber)" }
            if let code = detail?["status_code"]?.intValue { extra += ",\"status_code\":\(code)" }
            if let next = detail?["next_attempt"]?.intValue { extra += ",\"next_attempt_at\":\"\(UTCTime.format(millis: next))\"" }
            items.append(item("webhook", at: row.atMillis, extra: extra))
        default:
            if row.foldsStart, let started = detail?["started"]?.intValue { start(at: started) }
            var extra = ""
            if let error = detail?["error"]?.stringValue { extra += ",\"error\":\(string(error))" }
            if let result = detail?["result"] { extra += ",\"result\":\(result.serialized)" }
            if let next = detail?["next_attempt"]?.intValue { extra += ",\"next_attempt_at\":\"\(UTCTime.format(millis: next))\"" }
            items.append(item(row.status, at: row.atMillis, extra: extra))
        }
        return items
    }

    private static func string(_ value: String) -> String {
        var out = ""
        JSONValue.writeString(value, into: &out)
        return out
    }
}
