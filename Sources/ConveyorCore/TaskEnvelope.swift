/// A task as it travels through the ready stream: exactly what an agent needs to run one attempt.
///
/// Stream entry fields (DESIGN §4): `id`, `type`, `params` (JSON text), `cid` (correlation id),
/// `attempt` (1-based), `max` (max attempts), `enq` (submission time, Unix ms; kept across retries, reset by a redrive),
/// `cb` = `1` when the task has a completion webhook, `pri` = its priority when not normal (`0` low, `2`
/// high), `lk` = its limit key, `rr` and `rs` = the starts its rate limit reserved (Unix ms), `deps` = a workflow
/// node's dependencies and their results (JSON object text); each absent otherwise.
public struct TaskEnvelope: Sendable, Hashable {
    public var id: TaskID
    public var type: String
    /// The params as compact JSON text, exactly as stored in PostgreSQL.
    public var params: String
    public var correlationID: String
    public var attempt: Int
    public var maxAttempts: Int
    public var enqueuedAtMillis: Int64
    /// Whether the task has a `callback_url`. Its outcome event carries the flag on, so the Recorder
    /// looks for a webhook only for the tasks that have one: tasks without cost nothing.
    public var hasCallback: Bool
    /// Which of the queue's ready streams carries the task.
    public var priority: TaskPriority
    /// The value its type's `per_key` limits are counted under (a customer, a user), if any.
    public var limitKey: String?
    /// When this attempt's start was reserved by its type's rate limit (field `rr`, Unix ms): coming back
    /// from the delayed set on time, it is not charged again.
    public var rateReservedAt: Int64?
    /// When a start slot was reserved for this attempt after it came back too late to start in turn
    /// (field `rs`, Unix ms): see the admission script.
    public var rateSlotAt: Int64?
    /// A workflow node's dependencies, by node key: `{"<key>": {"task_id", "status", "result" | "error"}}`
    /// (JSON text). Carried by every attempt's entry, so a retry is given them too.
    public var dependencies: String?

    public init(
        id: TaskID, type: String, params: String, correlationID: String,
        attempt: Int, maxAttempts: Int, enqueuedAtMillis: Int64, hasCallback: Bool = false,
        priority: TaskPriority = .normal, limitKey: String? = nil, dependencies: String? = nil
    ) {
        self.dependencies = dependencies
        self.hasCallback = hasCallback
        self.priority = priority
        self.limitKey = limitKey
        self.id = id
        self.type = type
        self.params = params
        self.correlationID = correlationID
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.enqueuedAtMillis = enqueuedAtMillis
    }

    /// A field's value as an XADD writes it: text, or a number that is written as its digits.
    public enum FieldValue: Sendable {
        case text(String)
        case integer(Int64)

        public var text: String {
            switch self {
            case .text(let text): text
            case .integer(let number): String(number)
            }
        }
    }

    /// Visits the fields written with XADD, in their fixed order. ``fields`` collects them; the
    /// Submitter's XADD writes them straight into its command, without a string per number or an array
    /// per entry (`RedisConnection.xadd(stream:envelope:)`).
    @inlinable
    public func forEachField(_ visit: (StaticString, FieldValue) -> Void) {
        visit("id", .integer(id.rawValue))
        visit("type", .text(type))
        visit("params", .text(params))
        visit("cid", .text(correlationID))
        visit("attempt", .integer(Int64(attempt)))
        visit("max", .integer(Int64(maxAttempts)))
        visit("enq", .integer(enqueuedAtMillis))
        if hasCallback { visit("cb", .integer(1)) }
        if priority != .normal { visit("pri", .integer(Int64(priority.rawValue))) }
        if let limitKey { visit("lk", .text(limitKey)) }
        if let rateReservedAt { visit("rr", .integer(rateReservedAt)) }
        if let rateSlotAt { visit("rs", .integer(rateSlotAt)) }
        if let dependencies { visit("deps", .text(dependencies)) }
    }

    /// The field/value pairs written with XADD, in a fixed order.
    public var fields: [(String, String)] {
        var fields: [(String, String)] = []
        fields.reserveCapacity(8)
        forEachField { name, value in fields.append((name.description, value.text)) }
        return fields
    }

    /// The fields of a scheduled task's entry as parked in the delayed set: ``fields`` plus `sched`, which
    /// tells the Forwarder to record the task's release (status `queued`) when it moves the entry.
    public var scheduledFields: [(String, String)] { fields + [("sched", "1")] }

    /// Decodes a stream entry. Throws when a field is missing or malformed: such an entry is poison and is
    /// dead-lettered rather than retried. A name written twice keeps its last value; unknown names are
    /// ignored (an older agent reads a newer coordinator's entries).
    ///
    /// One pass over the fields in their written order, each name matched once: an agent decodes every
    /// entry it runs, and a dictionary of the fields cost a hash per name and an allocation per entry.
    public init(fields: [StreamField]) throws(EnvelopeError) {
        var id, type, params, cid, attemptText, maxText, enqText, cb, pri, lk, rr, rs, deps: String?
        for field in fields {
            switch field.name {
            case "id": id = field.value
            case "type": type = field.value
            case "params": params = field.value
            case "cid": cid = field.value
            case "attempt": attemptText = field.value
            case "max": maxText = field.value
            case "enq": enqText = field.value
            case "cb": cb = field.value
            case "pri": pri = field.value
            case "lk": lk = field.value
            case "rr": rr = field.value
            case "rs": rs = field.value
            case "deps": deps = field.value
            default: continue
            }
        }
        func required(_ value: String?, _ name: String) throws(EnvelopeError) -> String {
            guard let value else { throw EnvelopeError(field: name, reason: "missing") }
            return value
        }
        func number(_ value: String?, _ name: String) throws(EnvelopeError) -> Int64 {
            guard let number = Int64(try required(value, name)) else { throw EnvelopeError(field: name, reason: "not an integer") }
            return number
        }
        guard let taskID = TaskID(try required(id, "id")) else { throw EnvelopeError(field: "id", reason: "not a task id") }
        self.id = taskID
        self.type = try required(type, "type")
        self.params = try required(params, "params")
        self.correlationID = try required(cid, "cid")
        self.attempt = Int(try number(attemptText, "attempt"))
        self.maxAttempts = Int(try number(maxText, "max"))
        self.enqueuedAtMillis = try number(enqText, "enq")
        self.hasCallback = cb == "1"
        if let pri {
            guard let priority = TaskPriority(text: pri) else { throw EnvelopeError(field: "pri", reason: "not a priority") }
            self.priority = priority
        } else {
            self.priority = .normal
        }
        self.limitKey = lk
        self.rateReservedAt = rr.flatMap { Int64($0) }
        self.rateSlotAt = rs.flatMap { Int64($0) }
        self.dependencies = deps
        guard self.attempt >= 1 else { throw EnvelopeError(field: "attempt", reason: "must be at least 1") }
    }

    /// Decodes fields given by name (tests, and entries already read into a dictionary).
    public init(fields: [String: String]) throws(EnvelopeError) {
        try self.init(fields: fields.map { StreamField($0.key, $0.value) })
    }
}

/// Why a stream entry could not be decoded.
public struct EnvelopeError: Error, Sendable, Hashable, CustomStringConvertible {
    public var field: String
    public var reason: String

    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String { "stream entry field '\(field)': \(reason)" }
}
