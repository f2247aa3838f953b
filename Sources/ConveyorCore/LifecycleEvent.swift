/// One step in a task's life, written by an agent to its queue's events stream and recorded by the
/// coordinator into `task_events` and `tasks`.
///
/// Its ``eventID`` is derived from (task, attempt, status), so a replayed event (for example after the
/// Recorder crashed between COMMIT and XACK) has the same id and is ignored the second time.
///
/// A progress report is an event too: status `running` with ``progress`` set. It moves no status; its
/// id adds its time, so an attempt's reports are kept apart and a replayed one is still recognised.
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
    /// When the attempt's stream entry was added (Unix ms): the history's "dispatched" step.
    public var dispatchedAtMillis: Int64?
    /// For `retrying`: when the next attempt is due (Unix ms).
    public var nextAttemptAtMillis: Int64?
    /// Set on a progress report (see the type's documentation).
    public var progress: TaskProgress?
    /// On an outcome: the task has a completion webhook (``TaskEnvelope/hasCallback``), field `cb`.
    public var hasCallback = false

    public init(
        taskID: TaskID, status: TaskStatus, attempt: Int, agent: String, atMillis: Int64,
        startedAtMillis: Int64? = nil, result: String? = nil, error: String? = nil,
        correlationID: String, type: String, dispatchedAtMillis: Int64? = nil, nextAttemptAtMillis: Int64? = nil,
        progress: TaskProgress? = nil
    ) {
        self.dispatchedAtMillis = dispatchedAtMillis
        self.nextAttemptAtMillis = nextAttemptAtMillis
        self.progress = progress
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

    public var eventID: String {
        if progress != nil { return "\(taskID.rawValue)-\(attempt)-progress-\(atMillis)" }
        return "\(taskID.rawValue)-\(attempt)-\(status.rawValue)"
    }

    /// ``eventID``'s bytes, written where they go: the Recorder writes one per event of every batch, and
    /// most ids are too long for a string that needs no allocation.
    public func writeEventID(to bytes: inout [UInt8]) {
        func number(_ value: Int64) {
            if value < 0 { bytes.append(UInt8(ascii: "-")) }
            bytes.appendDecimalDigits(of: value.magnitude)
        }
        number(taskID.rawValue)
        bytes.append(UInt8(ascii: "-"))
        number(Int64(attempt))
        bytes.append(UInt8(ascii: "-"))
        if progress != nil {
            bytes.append(contentsOf: "progress-".utf8)
            number(atMillis)
        } else {
            bytes.append(contentsOf: status.rawValue.utf8)
        }
    }

    /// Whether this is a progress report rather than a change of status.
    public var isProgress: Bool { progress != nil }

    /// Where the event stands in the task's forward-only order (``TaskStatus/progress(attempt:)``).
    public var rank: Int64 { status.progress(attempt: attempt) }

    /// The field/value pairs of the event, spelled out (as Lua scripts write them; agents write the
    /// ``compactFields``).
    public var fields: [(String, String)] {
        var fields: [(String, String)] = [
            ("task", taskID.description), ("status", status.rawValue), ("attempt", String(attempt)),
            ("agent", agent), ("at", String(atMillis)), ("cid", correlationID), ("type", type),
        ]
        if let startedAtMillis { fields.append(("started", String(startedAtMillis))) }
        if let result { fields.append(("result", result)) }
        if let error { fields.append(("error", error)) }
        if let dispatchedAtMillis { fields.append(("disp", String(dispatchedAtMillis))) }
        if let nextAttemptAtMillis { fields.append(("next", String(nextAttemptAtMillis))) }
        if let progress { fields.append(contentsOf: progress.fields) }
        if hasCallback { fields.append(("cb", "1")) }
        return fields
    }

    /// Reads an events-stream entry, in the spelled-out or the compact form (``compactFields``).
    public init(fields entry: [String: String]) throws(EnvelopeError) {
        if let packed = entry[Self.compactField] {
            try self.init(text: try LifecycleEventText(compact: packed))
        } else {
            try self.init(text: LifecycleEventText(fields: entry))
        }
    }

    /// Checks and converts an event's fields as text.
    init(text: LifecycleEventText) throws(EnvelopeError) {
        func required(_ value: String?, _ name: String) throws(EnvelopeError) -> String {
            guard let value else { throw EnvelopeError(field: name, reason: "missing") }
            return value
        }
        guard let id = TaskID(try required(text.task, "task")) else { throw EnvelopeError(field: "task", reason: "not a task id") }
        guard let status = TaskStatus(rawValue: try required(text.status, "status")) else {
            throw EnvelopeError(field: "status", reason: "unknown status")
        }
        guard let attempt = Int(try required(text.attempt, "attempt")) else { throw EnvelopeError(field: "attempt", reason: "not an integer") }
        guard let at = Int64(try required(text.at, "at")) else { throw EnvelopeError(field: "at", reason: "not an integer") }
        let agent = try required(text.agent, "agent")
        self.taskID = id
        self.status = status
        self.attempt = attempt
        self.agent = agent
        self.atMillis = at
        self.startedAtMillis = text.started.flatMap { Int64($0) }
        self.result = text.result
        self.error = text.error
        self.correlationID = try required(text.cid, "cid")
        self.type = try required(text.type, "type")
        self.dispatchedAtMillis = text.disp.flatMap { Int64($0) }
        self.nextAttemptAtMillis = text.next.flatMap { Int64($0) }
        self.hasCallback = text.cb == "1"
        do {
            self.progress = text.others.isEmpty ? nil : try TaskProgress(fields: text.others)
        } catch {
            throw EnvelopeError(field: "progress", reason: error.message)
        }
    }
}
