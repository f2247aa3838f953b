import ConveyorCore

/// Submission bodies read by hand from one pass of ``JSONValue/parse(_:)-(Data)``, on every task's path.
///
/// Written by hand because `JSONDecoder` through `Codable` cost about 12 µs and 56 allocations per
/// task (`make bench`: "JSON: decode a batch of 500 submissions"), a tenth of a core at the batch
/// ceiling: a decoder and its containers per element, a trial decode per type for `params`, `delay`
/// and `priority`, then `params` serialised again. The messages name the field path the way the
/// Codable path did (`tasks[3].type: expected a string`, `type: required`), so clients see the same
/// errors. Unknown members are ignored, as before. ``TaskSubmissionBody`` stays `Decodable` for the
/// nodes of a workflow, which are not on the hot path.
extension TaskSubmissionBody {
    /// - Parameters:
    ///   - path: how errors name this element (`tasks[3]`), or "" for a single submission.
    ///   - index: the batch index errors carry, or nil.
    init(json: JSONValue, path: String, index: Int?) throws(APIError) {
        try self.init(json: json, reader: MemberReader(path: path, index: index))
    }

    fileprivate init(json: JSONValue, reader: MemberReader) throws(APIError) {
        guard case .object(let object) = json else { throw reader.mismatch(nil, expected: "an object", got: json) }
        // One walk over the members the body has (usually two) instead of a hashed lookup of each of the
        // eleven it may have: those lookups were a twentieth of the coordinator's CPU at the ceiling. The
        // members are then checked in a fixed order, so a body with several bad ones always gets the same 400.
        let members = KnownMembers(object)
        guard let typeValue = members.type else { throw reader.missing("type") }
        guard case .string(let type) = typeValue else { throw reader.mismatch("type", expected: "a string", got: typeValue) }
        self.init(type: type)
        params = members.params.flatMap { $0 == .null ? nil : $0 }
        queue = try reader.string(members.queue, "queue")
        maxAttempts = try reader.integer(members.maxAttempts, "max_attempts")
        idempotencyKey = try reader.string(members.idempotencyKey, "idempotency_key")
        runAt = try reader.string(members.runAt, "run_at")
        callbackURL = try reader.string(members.callbackURL, "callback_url")
        limitKey = try reader.string(members.limitKey, "limit_key")
        switch members.tags {
        case nil, .null?:
            tags = nil
        case .object(let pairs)?:
            var strings: [String: String] = [:]
            strings.reserveCapacity(pairs.count)
            for (key, value) in pairs {
                guard case .string(let text) = value else { throw reader.mismatch("tags.\(key)", expected: "a string", got: value) }
                strings[key] = text
            }
            tags = strings
        case let other?:
            throw reader.mismatch("tags", expected: "an object", got: other)
        }
        switch members.delay {
        case nil, .null?: delay = nil
        case .integer(let seconds)?: delay = .seconds(Double(seconds))
        case .double(let seconds)?: delay = .seconds(seconds)
        case .string(let text)?: delay = .text(text)
        // "a string", as the Codable path (and a workflow node's) words it: a number or a text.
        case let other?: throw reader.mismatch("delay", expected: "a string", got: other)
        }
        switch members.priority {
        case nil, .null?: priority = nil
        case .string(let text)?: priority = .text(text)
        case let number? where number.intValue.map({ Int(exactly: $0) != nil }) == true: priority = .number(Int(number.intValue!))
        case let other?: throw reader.mismatch("priority", expected: "a string", got: other)
        }
    }

    /// A body with only its type: the other members are filled in by ``init(json:path:index:)``.
    private init(type: String) {
        self.type = type
    }
}

extension TaskBatchBody {
    init(json: JSONValue) throws(APIError) {
        let reader = MemberReader(path: "", index: nil)
        guard case .object(let members) = json else { throw reader.mismatch(nil, expected: "an object", got: json) }
        guard let list = members["tasks"] else { throw reader.missing("tasks") }
        guard case .array(let elements) = list else { throw reader.mismatch("tasks", expected: "an array", got: list) }
        var tasks: [TaskSubmissionBody] = []
        tasks.reserveCapacity(elements.count)
        for (index, element) in elements.enumerated() {
            tasks.append(try TaskSubmissionBody(json: element, reader: MemberReader(batchIndex: index)))
        }
        self.tasks = tasks
    }
}

/// The members a submission may have, picked out of its object in one walk; unknown ones are ignored.
private struct KnownMembers {
    var type, params, queue, maxAttempts, idempotencyKey, runAt, callbackURL, limitKey, tags, delay, priority: JSONValue?

    init(_ object: [String: JSONValue]) {
        for (name, value) in object {
            switch name {
            case "type": type = value
            case "params": params = value
            case "queue": queue = value
            case "max_attempts": maxAttempts = value
            case "idempotency_key": idempotencyKey = value
            case "run_at": runAt = value
            case "callback_url": callbackURL = value
            case "limit_key": limitKey = value
            case "tags": tags = value
            case "delay": delay = value
            case "priority": priority = value
            default: continue
            }
        }
    }
}

/// Reads optional members of one JSON object and words the 400 for a member of the wrong kind.
private struct MemberReader {
    /// How errors name the object: "" for a single submission, or nil for a batch's element, whose name
    /// (`tasks[3]`) is only written when there is an error to word.
    private var path: String?
    var index: Int?

    init(path: String, index: Int?) {
        self.path = path
        self.index = index
    }

    init(batchIndex: Int) {
        self.path = nil
        self.index = batchIndex
    }

    func field(_ name: String?) -> String {
        let path = self.path ?? "tasks[\(index ?? 0)]"
        guard let name else { return path }
        return path.isEmpty ? name : "\(path).\(name)"
    }

    func missing(_ name: String) -> APIError {
        .badRequest("\(field(name)): required", code: "missing_field", index: index)
    }

    func mismatch(_ name: String?, expected: String, got value: JSONValue? = nil) -> APIError {
        let at = field(name)
        let got = value == .null ? ", got null" : ""
        return .badRequest("\(at.isEmpty ? "the body" : at): expected \(expected)\(got)", code: "invalid_field", index: index)
    }

    func string(_ value: JSONValue?, _ name: String) throws(APIError) -> String? {
        switch value {
        case nil, .null?: return nil
        case .string(let text)?: return text
        case let other?: throw mismatch(name, expected: "a string", got: other)
        }
    }

    func integer(_ value: JSONValue?, _ name: String) throws(APIError) -> Int? {
        switch value {
        case nil, .null?: return nil
        case let value?:
            guard let number = value.intValue, let integer = Int(exactly: number) else { throw mismatch(name, expected: "an integer", got: value) }
            return integer
        }
    }
}
