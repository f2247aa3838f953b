import ConveyorCore
import ConveyorPostgres
import Foundation

/// The body of `POST /v1/tasks` and of each element of `POST /v1/tasks/batch`.
struct TaskSubmissionBody: Decodable, Sendable {
    var type: String
    var params: JSONValue?
    var queue: String?
    var maxAttempts: Int?
    /// Batch elements only; a single submission uses the `Idempotency-Key` header.
    var idempotencyKey: String?
    var tags: [String: String]?
    /// Run later: a duration (`"90s"`, `"5m"`, or a number of seconds) …
    var delay: DelayValue?
    /// … or an RFC 3339 time. Not both.
    var runAt: String?
    var callbackURL: String?
    /// `"low"`, `"normal"`, `"high"` or 0–2.
    var priority: PriorityValue?
    var limitKey: String?

    enum CodingKeys: String, CodingKey {
        case type, params, queue, tags, delay, priority
        case limitKey = "limit_key"
        case maxAttempts = "max_attempts"
        case idempotencyKey = "idempotency_key"
        case runAt = "run_at"
        case callbackURL = "callback_url"
    }
}

/// `delay` as a client may write it: `"90s"` or `90`.
enum DelayValue: Decodable, Sendable {
    case text(String)
    case seconds(Double)

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let seconds = try? container.decode(Double.self) {
            self = .seconds(seconds)
        } else {
            self = .text(try container.decode(String.self))
        }
    }

    var duration: Duration? {
        switch self {
        case .text(let text): Duration(configurationText: text)
        case .seconds(let seconds): Duration(configurationText: String(seconds))
        }
    }
}

/// `priority` as a client may write it: `"high"` or `2`.
enum PriorityValue: Decodable, Sendable {
    case text(String)
    case number(Int)

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int.self) {
            self = .number(number)
        } else {
            self = .text(try container.decode(String.self))
        }
    }

    var priority: TaskPriority? {
        switch self {
        case .text(let text): TaskPriority(text: text)
        case .number(let number): TaskPriority(rawValue: number)
        }
    }
}

struct TaskBatchBody: Decodable, Sendable {
    var tasks: [TaskSubmissionBody]
}

/// Turns request bodies into validated ``NewTask``s, or the precise ``APIError`` a client should see.
/// Pure: no I/O, so every 400 and 422 path is unit-tested without a server.
package struct TaskSubmissionParser: Sendable {
    let registry: TaskTypeRegistry
    let webhookHosts: WebhookHostPolicy

    package init(registry: TaskTypeRegistry, webhookHosts: WebhookHostPolicy = WebhookHostPolicy(allowedHosts: [])) {
        self.registry = registry
        self.webhookHosts = webhookHosts
    }

    /// How far ahead a task may be scheduled.
    static let maxScheduleAhead = Duration.seconds(366 * 86_400)

    /// Longest accepted idempotency key.
    static let maxIdempotencyKeyLength = 255

    /// Refuses an empty or overlong idempotency key, or one with control characters (a task's, or a
    /// workflow's `Idempotency-Key`).
    static func checkIdempotencyKey(_ key: String?, at: some CustomStringConvertible, index: Int?) throws(APIError) {
        guard let key else { return }
        guard !key.isEmpty, key.utf8.count <= maxIdempotencyKeyLength, !key.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            throw .badRequest("\(at)idempotency key: must be 1–\(maxIdempotencyKeyLength) bytes without control characters", code: "invalid_field", index: index)
        }
    }
    /// Tags per task, and the longest key and value (bytes). Small on purpose: tags are for finding and
    /// grouping tasks (customer, source, batch), and they are stored and indexed with every task.
    static let maxTags = 20
    static let maxTagKeyBytes = 64
    static let maxTagValueBytes = 256
    /// Longest limit key (bytes): it is part of Redis key names.
    static let maxLimitKeyBytes = 128

    package func parseSingle(_ body: Data, correlationID: String, idempotencyKey: String?, now: Int64) throws(APIError) -> NewTask {
        let decoded = try TaskSubmissionBody(json: Self.parseJSON(body), path: "", index: nil)
        if decoded.idempotencyKey != nil, idempotencyKey != nil {
            throw .badRequest("use either the Idempotency-Key header or the idempotency_key field, not both")
        }
        return try validate(decoded, index: nil, correlationID: correlationID, idempotencyKey: idempotencyKey ?? decoded.idempotencyKey, now: now)
    }

    /// All elements or none: the first invalid element rejects the batch and is named by its index.
    /// With an `Idempotency-Key` header, element i gets the key `<header>:<i>` unless it brings its own,
    /// so retrying the same batch returns the same tasks.
    package func parseBatch(_ body: Data, correlationID: String, idempotencyKey: String?, now: Int64) throws(APIError) -> [NewTask] {
        let decoded = try TaskBatchBody(json: Self.parseJSON(body))
        guard !decoded.tasks.isEmpty else { throw .badRequest("'tasks' must hold at least one task", code: "empty_batch") }
        guard decoded.tasks.count <= CoordinatorConfiguration.maxBatchTasks else {
            throw .badRequest("a batch holds at most \(CoordinatorConfiguration.maxBatchTasks) tasks, got \(decoded.tasks.count)", code: "batch_too_large")
        }
        var tasks: [NewTask] = []
        tasks.reserveCapacity(decoded.tasks.count)
        for (index, element) in decoded.tasks.enumerated() {
            let key = element.idempotencyKey ?? idempotencyKey.map { "\($0):\(index)" }
            tasks.append(try validate(element, index: index, correlationID: correlationID, idempotencyKey: key, now: now))
        }
        return tasks
    }

    /// - Parameter label: how errors name the element (default `tasks[i].`, or nothing for a single task).
    func validate(
        _ body: TaskSubmissionBody, index: Int?, label: String? = nil, correlationID: String, idempotencyKey: String?, now: Int64
    ) throws(APIError) -> NewTask {
        let at = FieldPrefix(label: label, index: index)
        guard let definition = registry[body.type] else {
            throw .unprocessable("unknown_task_type", "\(at)type: unknown task type '\(body.type)'", index: index)
        }
        var queue = definition.queue
        if let requested = body.queue {
            guard registry.queues.contains(requested) else {
                throw .unprocessable("unknown_queue", "\(at)queue: unknown queue '\(requested)' (known: \(registry.queues.joined(separator: ", ")))", index: index)
            }
            queue = requested
        }
        var maxAttempts = definition.maxAttempts
        if let requested = body.maxAttempts {
            guard (1...CoordinatorConfiguration.maxAttemptsLimit).contains(requested) else {
                throw .badRequest("\(at)max_attempts: must be 1–\(CoordinatorConfiguration.maxAttemptsLimit)", code: "invalid_field", index: index)
            }
            maxAttempts = requested
        }
        let params = body.params ?? .object([:])
        guard case .object = params else {
            throw .badRequest("\(at)params: must be a JSON object", code: "invalid_field", index: index)
        }
        // PostgreSQL cannot store U+0000 in jsonb or text: refuse it here rather than fail a whole batch.
        guard !params.containsNUL else {
            throw .badRequest("\(at)params: strings must not contain U+0000", code: "invalid_field", index: index)
        }
        try Self.checkIdempotencyKey(idempotencyKey, at: at, index: index)
        let tags = try Self.validateTags(body.tags, at: at, index: index)
        let runAt = try Self.runAt(body, at: at, index: index, now: now)
        let callbackURL = body.callbackURL ?? definition.callbackURL
        if let callbackURL, let reason = webhookHosts.refusal(for: callbackURL) {
            throw .unprocessable("invalid_callback_url", "\(at)callback_url: \(reason)", index: index)
        }
        var priority = TaskPriority.normal
        if let value = body.priority {
            guard let parsed = value.priority else {
                throw .badRequest("\(at)priority: must be \"low\", \"normal\", \"high\" or 0–2 (higher starts first)", code: "invalid_field", index: index)
            }
            priority = parsed
        }
        if let key = body.limitKey {
            guard !key.isEmpty, key.utf8.count <= Self.maxLimitKeyBytes, key.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else {
                throw .badRequest(
                    "\(at)limit_key: must be 1–\(Self.maxLimitKeyBytes) bytes without spaces or control characters", code: "invalid_field", index: index)
            }
        }
        return NewTask(
            type: definition.name, queue: queue, params: params.serialized, correlationID: correlationID,
            idempotencyKey: idempotencyKey, maxAttempts: maxAttempts, createdAtMillis: now, tags: tags,
            runAtMillis: runAt, callbackURL: callbackURL, priority: priority, limitKey: body.limitKey)
    }

    /// When the task is due (Unix ms), or nil to run now: a time that has passed runs now too.
    static func runAt(_ body: TaskSubmissionBody, at: some CustomStringConvertible, index: Int?, now: Int64) throws(APIError) -> Int64? {
        let due: Int64
        switch (body.delay, body.runAt) {
        case (nil, nil):
            return nil
        case (.some, .some):
            throw .badRequest("\(at)delay, run_at: give one of them, not both", code: "invalid_schedule", index: index)
        case (let delay?, nil):
            guard let duration = delay.duration, duration >= .zero else {
                throw .badRequest("\(at)delay: must be a duration such as \"90s\", \"5m\", \"2h\" or a number of seconds", code: "invalid_schedule", index: index)
            }
            guard duration <= maxScheduleAhead else {
                throw .badRequest("\(at)delay: at most 366 days", code: "invalid_schedule", index: index)
            }
            due = now + duration.milliseconds
        case (nil, let text?):
            guard let millis = RFC3339.parseMillis(text) else {
                throw .badRequest("\(at)run_at: must be an RFC 3339 time such as \"2026-12-01T09:30:00Z\"", code: "invalid_schedule", index: index)
            }
            guard millis - now <= maxScheduleAhead.milliseconds else {
                throw .badRequest("\(at)run_at: at most 366 days ahead", code: "invalid_schedule", index: index)
            }
            due = millis
        }
        return due > now ? due : nil
    }

    /// The tags as compact JSON (nil for none), or the 400 naming the tag at fault.
    static func validateTags(_ tags: [String: String]?, at: some CustomStringConvertible, index: Int?) throws(APIError) -> String? {
        guard let tags, !tags.isEmpty else { return nil }
        guard tags.count <= maxTags else {
            throw .badRequest("\(at)tags: at most \(maxTags) tags, got \(tags.count)", code: "invalid_tags", index: index)
        }
        for (key, value) in tags.sorted(by: { $0.key < $1.key }) {
            guard !key.isEmpty, key.utf8.count <= maxTagKeyBytes, key.utf8.allSatisfy(isTagKeyByte) else {
                throw .badRequest(
                    "\(at)tags: key '\(key.prefix(80))' must be 1–\(maxTagKeyBytes) bytes of letters, digits and _ . : / -",
                    code: "invalid_tags", index: index)
            }
            guard value.utf8.count <= maxTagValueBytes, !value.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
                throw .badRequest(
                    "\(at)tags.\(key): the value must be at most \(maxTagValueBytes) bytes without control characters",
                    code: "invalid_tags", index: index)
            }
        }
        return JSONValue.object(tags.mapValues { .string($0) }).serialized
    }

    private static func isTagKeyByte(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
            || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: ":") || byte == UInt8(ascii: "/")
            || byte == UInt8(ascii: "-")
    }

    /// The body as JSON, by the hand-written parser (see `TaskSubmissionBody+JSONValue.swift`).
    static func parseJSON(_ body: Data) throws(APIError) -> JSONValue {
        // A UTF-8 byte-order mark, which JSONDecoder skipped, is skipped here too.
        let text = body.starts(with: [0xEF, 0xBB, 0xBF]) ? body.dropFirst(3) : body
        do {
            return try JSONValue.parse(text)
        } catch {
            throw .badRequest("the body is not valid JSON (\(error.reason) at byte \(error.offset))", code: "malformed_json")
        }
    }

    static func decode<T: Decodable>(_ body: Data) throws(APIError) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: body)
        } catch let error as DecodingError {
            throw Self.describe(error)
        } catch {
            throw .badRequest("the body is not valid JSON", code: "malformed_json")
        }
    }

    /// A DecodingError as a client-facing message naming the field path, e.g. `tasks[3].type: expected a string`.
    static func describe(_ error: DecodingError) -> APIError {
        func path(_ codingPath: [any CodingKey]) -> String {
            var out = ""
            for key in codingPath {
                if let index = key.intValue {
                    out += "[\(index)]"
                } else {
                    out += out.isEmpty ? key.stringValue : ".\(key.stringValue)"
                }
            }
            return out
        }
        func index(_ codingPath: [any CodingKey]) -> Int? {
            guard codingPath.first?.stringValue == "tasks", codingPath.count > 1 else { return nil }
            return codingPath[1].intValue
        }
        switch error {
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return .badRequest("the body is not valid JSON", code: "malformed_json") }
            return .badRequest("\(path(context.codingPath)): \(context.debugDescription)", code: "invalid_field", index: index(context.codingPath))
        case .keyNotFound(let key, let context):
            let full = path(context.codingPath + [key])
            return .badRequest("\(full): required", code: "missing_field", index: index(context.codingPath))
        case .typeMismatch(let type, let context):
            return .badRequest("\(path(context.codingPath)): expected \(describe(type))", code: "invalid_field", index: index(context.codingPath))
        case .valueNotFound(let type, let context):
            return .badRequest("\(path(context.codingPath)): expected \(describe(type)), got null", code: "invalid_field", index: index(context.codingPath))
        @unknown default:
            return .badRequest("the body does not match the expected shape", code: "invalid_request")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is DelayValue.Type: "a duration"
        case is PriorityValue.Type: "a priority"
        case is Int.Type: "an integer"
        case is [TaskSubmissionBody].Type, is [Any].Type: "an array"
        case is JSONValue.Type: "a JSON value"
        default: "an object"
        }
    }
}

/// How a 400 or 422 names the element it is about: its label, `tasks[i].`, or nothing for a single
/// task. Written only into an error's message: a batch's elements are almost always valid, and the
/// text of each one's name cost an allocation per task.
struct FieldPrefix: CustomStringConvertible {
    var label: String?
    var index: Int?

    var description: String { label ?? index.map { "tasks[\($0)]." } ?? "" }
}
