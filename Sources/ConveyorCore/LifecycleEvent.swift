/// One step in a task's life, written by an agent to its queue's events stream and recorded by the
/// coordinator into `task_events` and `tasks`.
///
/// Its ``eventID`` is derived from (task, attempt, status), so a replayed event (for example after the
/// Recorder crashed between COMMIT and XACK) has the same id and is ignored the second time.
public struct LifecycleEvent: Sendable, Hashable {
    public var taskID: TaskID
    public var status: TaskStatus
    public var attempt: Int
    public var agent: String
    /// When the step happened, Unix ms.
    public var atMillis: Int64
    /// When the attempt started, Unix ms: carried by the final event so that a fast task needs no
    /// separate `running` row update (its `running` and `succeeded` coalesce into one).
    public var startedAtMillis: Int64?
    /// The handler's result as JSON text.
    public var result: String?
    public var error: String?
    public var correlationID: String
    public var type: String

    public init(
        taskID: TaskID, status: TaskStatus, attempt: Int, agent: String, atMillis: Int64,
        startedAtMillis: Int64? = nil, result: String? = nil, error: String? = nil,
        correlationID: String, type: String
    ) {
        self.taskID = taskID
        self.status = status
        self.attempt = attempt
        self.agent = agent
        self.atMillis = atMillis
        self.startedAtMillis = startedAtMillis
        self.result = result
        self.error = error
        self.correlationID = correlationID
        self.type = type
    }

    public var eventID: String { "\(taskID.rawValue)-\(attempt)-\(status.rawValue)" }

    public var progress: Int64 { status.progress(attempt: attempt) }

    /// The field/value pairs written with XADD to the events stream.
    public var fields: [(String, String)] {
        var fields: [(String, String)] = [
            ("task", taskID.description), ("status", status.rawValue), ("attempt", String(attempt)),
            ("agent", agent), ("at", String(atMillis)), ("cid", correlationID), ("type", type),
        ]
        if let startedAtMillis { fields.append(("started", String(startedAtMillis))) }
        if let result { fields.append(("result", result)) }
        if let error { fields.append(("error", error)) }
        return fields
    }

    public init(fields: [String: String]) throws(EnvelopeError) {
        func field(_ name: String) throws(EnvelopeError) -> String {
            guard let value = fields[name] else { throw EnvelopeError(field: name, reason: "missing") }
            return value
        }
        guard let id = TaskID(try field("task")) else { throw EnvelopeError(field: "task", reason: "not a task id") }
        guard let status = TaskStatus(rawValue: try field("status")) else {
            throw EnvelopeError(field: "status", reason: "unknown status")
        }
        guard let attempt = Int(try field("attempt")) else { throw EnvelopeError(field: "attempt", reason: "not an integer") }
        guard let at = Int64(try field("at")) else { throw EnvelopeError(field: "at", reason: "not an integer") }
        self.taskID = id
        self.status = status
        self.attempt = attempt
        self.agent = try field("agent")
        self.atMillis = at
        self.startedAtMillis = fields["started"].flatMap { Int64($0) }
        self.result = fields["result"]
        self.error = fields["error"]
        self.correlationID = try field("cid")
        self.type = try field("type")
    }
}
