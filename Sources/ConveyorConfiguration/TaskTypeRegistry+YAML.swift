import ConveyorCore
import Foundation
import Yams

// MARK: - YAML

extension TaskTypeRegistry {
    /// Parses a registry file:
    ///
    /// ```yaml
    /// types:
    ///   resize_image:
    ///     queue: images          # default "default"
    ///     max_concurrent: 5      # across all agents, default 5; "unlimited" for none
    ///     max_concurrent_per_agent: 2   # on one agent, default: no limit but the agent's --concurrency
    ///     rate_limit: 10/s       # starts per second (also /min, /h) across all agents; "10/s burst 20"
    ///     per_key:               # limits per value of a submission's limit_key (a customer, a user)
    ///       max_concurrent: 2
    ///       rate_limit: 5/s
    ///     timeout: 60s           # default 5m
    ///     max_attempts: 3        # default 3
    ///     handler: command       # noop | sleep | echo | fail | command | <in-process name>
    ///     command: ["/usr/local/bin/resize", "--fast"]
    ///     max_output_bytes: 1048576
    ///     backoff_base: 1s       # retry backoff with full jitter, default 1s …
    ///     backoff_max: 10m       # … capped at 10m
    ///     lease: 30s             # taken over by another agent after this long without renewal
    ///     env:                   # command types only: variables the command gets (besides TASK_* …)
    ///       GIT_AUTHOR_NAME: conveyor
    ///     callback_url: https://hooks.example.com/done   # default completion webhook of its tasks
    ///   transcribe:
    ///     handler: http          # the agent POSTs each task to a worker service …
    ///     url: http://127.0.0.1:9000/tasks   # … at this URL
    /// schedules:                 # optional: periodic tasks
    ///   nightly_report:
    ///     cron: "0 3 * * *"      # 5 fields, or 6 with seconds first; @daily and friends
    ///     time_zone: Europe/Berlin   # default UTC
    ///     type: resize_image
    ///     params: {size: 64}     # default {}
    ///     queue: images          # default: the type's queue
    ///     missed: latest         # latest (default) | skip | all
    /// ```
    /// - Parameter source: names the file in error messages.
    public init(yaml: String, source: String) throws(ConfigurationError) {
        let root: Any?
        do {
            root = try Yams.load(yaml: yaml)
        } catch {
            throw ConfigurationError(key: source, "not valid YAML: \(error)")
        }
        guard let document = root as? [String: Any] else {
            throw ConfigurationError(key: source, "expected a mapping with a 'types' key")
        }
        let unknownTop = Set(document.keys).subtracting(["types", "schedules"])
        if let key = unknownTop.sorted().first {
            throw ConfigurationError(key: source, "unknown key '\(key)' (expected 'types' and optionally 'schedules')")
        }
        guard let types = document["types"] as? [String: Any], !types.isEmpty else {
            throw ConfigurationError(key: source, "'types' must be a non-empty mapping of type name to settings")
        }
        var definitions: [TaskTypeDefinition] = []
        for name in types.keys.sorted() {
            definitions.append(try Self.definition(name: name, settings: types[name], source: source))
        }
        let known = TaskTypeRegistry(definitions)
        var schedules: [ScheduleDefinition] = []
        if let raw = document["schedules"] {
            guard let mapping = raw as? [String: Any] else {
                throw ConfigurationError(key: "\(source): schedules", "expected a mapping of schedule name to settings")
            }
            for name in mapping.keys.sorted() {
                schedules.append(try Self.schedule(name: name, settings: mapping[name], registry: known, source: source))
            }
        }
        self.init(definitions, schedules: schedules)
    }

    private static let scheduleKeys: Set<String> = ["cron", "time_zone", "type", "params", "queue", "missed"]

    private static func schedule(name: String, settings: Any?, registry: TaskTypeRegistry, source: String) throws(ConfigurationError) -> ScheduleDefinition {
        let path = "\(source): schedules.\(name)"
        guard Self.isValidName(name) else {
            throw ConfigurationError(key: path, "schedule names use letters, digits, '_', '-', '.' and ':' (at most 100)")
        }
        guard let settings = settings as? [String: Any] else { throw ConfigurationError(key: path, "expected a mapping of settings") }
        if let key = Set(settings.keys).subtracting(scheduleKeys).sorted().first {
            throw ConfigurationError(key: "\(path).\(key)", "unknown setting (known: \(scheduleKeys.sorted().joined(separator: ", ")))")
        }
        guard let expression = settings["cron"] as? String else {
            throw ConfigurationError(key: "\(path).cron", "required: a cron expression such as \"*/5 * * * *\"")
        }
        let timeZone = (settings["time_zone"] as? String) ?? "UTC"
        let cron: CronSchedule
        do {
            cron = try CronSchedule(expression, timeZone: timeZone)
        } catch {
            throw ConfigurationError(key: "\(path).cron", error.description)
        }
        guard let type = settings["type"] as? String else { throw ConfigurationError(key: "\(path).type", "required: a task type") }
        guard let definition = registry[type] else {
            throw ConfigurationError(key: "\(path).type", "unknown task type '\(type)'")
        }
        var params = "{}"
        if let raw = settings["params"] {
            guard let value = JSONValue(yaml: raw), case .object = value else {
                throw ConfigurationError(key: "\(path).params", "must be a mapping (the task's params object)")
            }
            params = value.serialized
        }
        var queue: String?
        if let raw = settings["queue"] {
            guard let text = raw as? String, Self.isValidName(text) else {
                throw ConfigurationError(key: "\(path).queue", "queue names use letters, digits, '_', '-', '.' and ':'")
            }
            guard registry.queues.contains(text) || text == definition.queue else {
                throw ConfigurationError(key: "\(path).queue", "unknown queue '\(text)' (known: \(registry.queues.joined(separator: ", ")))")
            }
            queue = text
        }
        var missed = ScheduleDefinition.MissedTicks.latest
        if let raw = settings["missed"] {
            guard let text = raw as? String, let policy = ScheduleDefinition.MissedTicks(rawValue: text) else {
                throw ConfigurationError(key: "\(path).missed", "must be one of \(ScheduleDefinition.MissedTicks.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            missed = policy
        }
        return ScheduleDefinition(name: name, cron: cron, type: type, params: params, queue: queue, missedTicks: missed)
    }

    private static let knownKeys: Set<String> = [
        "queue", "max_concurrent", "max_concurrent_per_agent", "rate_limit", "per_key", "timeout", "max_attempts", "handler", "command", "max_output_bytes",
        "backoff_base", "backoff_max", "lease", "env", "url", "callback_url",
    ]

    private static func definition(name: String, settings: Any?, source: String) throws(ConfigurationError) -> TaskTypeDefinition {
        let path = "\(source): types.\(name)"
        guard Self.isValidName(name) else {
            throw ConfigurationError(key: path, "type names use letters, digits, '_', '-', '.' and ':' (at most 100)")
        }
        guard let settings = settings as? [String: Any] else {
            throw ConfigurationError(key: path, "expected a mapping of settings")
        }
        if let key = Set(settings.keys).subtracting(knownKeys).sorted().first {
            throw ConfigurationError(key: "\(path).\(key)", "unknown setting (known: \(knownKeys.sorted().joined(separator: ", ")))")
        }
        func positiveInt(_ key: String, default value: Int) throws(ConfigurationError) -> Int {
            guard let raw = settings[key] else { return value }
            guard let number = raw as? Int, number > 0 else {
                throw ConfigurationError(key: "\(path).\(key)", "must be a positive integer")
            }
            return number
        }
        let limits = try flowLimits(settings, path: path)
        guard let handler = settings["handler"] as? String, !handler.isEmpty else {
            throw ConfigurationError(key: "\(path).handler", "required: one of \(builtInHandlers.sorted().joined(separator: ", ")) or an in-process handler name")
        }
        func duration(_ key: String, default value: Duration) throws(ConfigurationError) -> Duration {
            guard let raw = settings[key] else { return value }
            guard let parsed = Duration(configurationText: "\(raw)"), parsed > .zero else {
                throw ConfigurationError(key: "\(path).\(key)", "must be a duration such as 500ms, 30s, 5m")
            }
            return parsed
        }
        let timeout = try duration("timeout", default: TaskTypeDefinition.defaultTimeout)
        let backoffBase = try duration("backoff_base", default: TaskTypeDefinition.defaultBackoffBase)
        let backoffMax = try duration("backoff_max", default: TaskTypeDefinition.defaultBackoffMax)
        let lease = try duration("lease", default: TaskTypeDefinition.defaultLease)
        guard lease >= .milliseconds(300) else {
            throw ConfigurationError(key: "\(path).lease", "must be at least 300ms")
        }
        guard backoffMax >= backoffBase else {
            throw ConfigurationError(key: "\(path).backoff_max", "must not be shorter than backoff_base")
        }
        var queue = TaskTypeDefinition.defaultQueue
        if let raw = settings["queue"] {
            guard let text = raw as? String, Self.isValidName(text) else {
                throw ConfigurationError(key: "\(path).queue", "queue names use letters, digits, '_', '-', '.' and ':'")
            }
            queue = text
        }
        var command: [String] = []
        if let raw = settings["command"] {
            if let text = raw as? String {
                command = [text]
            } else if let parts = raw as? [Any], !parts.isEmpty {
                command = parts.map { "\($0)" }
            } else {
                throw ConfigurationError(key: "\(path).command", "must be an executable path or a list [executable, args…]")
            }
        }
        var environment: [String: String] = [:]
        if let raw = settings["env"] {
            guard let mapping = raw as? [String: Any] else {
                throw ConfigurationError(key: "\(path).env", "must be a mapping of variable names to values")
            }
            for (name, value) in mapping {
                guard Self.isValidVariableName(name) else {
                    throw ConfigurationError(key: "\(path).env.\(name)", "variable names use letters, digits and '_', not starting with a digit")
                }
                guard !name.hasPrefix("TASK_"), !["CORRELATION_ID", "PAYLOAD_FILE", "PAYLOAD_JSON"].contains(name) else {
                    throw ConfigurationError(key: "\(path).env.\(name)", "is set by the agent for every task")
                }
                guard value is String || value is Int || value is Double || value is Bool else {
                    throw ConfigurationError(key: "\(path).env.\(name)", "must be a single value")
                }
                environment[name] = "\(value)"
            }
        }
        if handler == "command", command.isEmpty {
            throw ConfigurationError(key: "\(path).command", "required for handler 'command'")
        }
        func httpURL(_ key: String) throws(ConfigurationError) -> String? {
            guard let raw = settings[key] else { return nil }
            guard let text = raw as? String, text.hasPrefix("http://") || text.hasPrefix("https://"), text.utf8.count <= 2048 else {
                throw ConfigurationError(key: "\(path).\(key)", "must be an http:// or https:// URL")
            }
            return text
        }
        let url = try httpURL("url")
        if handler == "http", url == nil {
            throw ConfigurationError(key: "\(path).url", "required for handler 'http': the worker service's URL")
        }
        let callbackURL = try httpURL("callback_url")
        return TaskTypeDefinition(
            name: name,
            queue: queue,
            maxConcurrent: limits.maxConcurrent,
            maxConcurrentPerAgent: limits.maxConcurrentPerAgent,
            rateLimit: limits.rateLimit,
            perKey: limits.perKey,
            timeout: timeout,
            maxAttempts: try positiveInt("max_attempts", default: TaskTypeDefinition.defaultMaxAttempts),
            handler: handler,
            command: command,
            maxOutputBytes: try positiveInt("max_output_bytes", default: TaskTypeDefinition.defaultMaxOutputBytes),
            backoffBase: backoffBase,
            backoffMax: backoffMax,
            lease: lease,
            environment: environment,
            url: url,
            callbackURL: callbackURL
        )
    }

    private static let perKeyKeys: Set<String> = ["max_concurrent", "rate_limit"]

    /// A type's flow-control settings: `max_concurrent` (a positive integer or `unlimited`), the per-agent
    /// cap, `rate_limit` and `per_key`.
    private static func flowLimits(_ settings: [String: Any], path: String) throws(ConfigurationError)
        -> (maxConcurrent: Int?, maxConcurrentPerAgent: Int?, rateLimit: RateLimit?, perKey: KeyLimits?)
    {
        func limit(_ raw: Any?, key: String, default value: Int?) throws(ConfigurationError) -> Int? {
            guard let raw else { return value }
            if let text = raw as? String, text == "unlimited" { return nil }
            guard let number = raw as? Int, number > 0, number <= 1_000_000 else {
                throw ConfigurationError(key: key, "must be a positive integer (at most 1000000) or \"unlimited\"")
            }
            return number
        }
        func rate(_ raw: Any?, key: String) throws(ConfigurationError) -> RateLimit? {
            guard let raw else { return nil }
            guard let text = raw as? String, let rate = RateLimit(text: text) else {
                throw ConfigurationError(key: key, "must be a rate such as 10/s, 600/min or 100/h, optionally followed by 'burst N'")
            }
            return rate
        }
        let maxConcurrent = try limit(settings["max_concurrent"], key: "\(path).max_concurrent", default: TaskTypeDefinition.defaultMaxConcurrent)
        let perAgent = try limit(settings["max_concurrent_per_agent"], key: "\(path).max_concurrent_per_agent", default: nil)
        let rateLimit = try rate(settings["rate_limit"], key: "\(path).rate_limit")
        var perKey: KeyLimits?
        if let raw = settings["per_key"] {
            guard let mapping = raw as? [String: Any] else {
                throw ConfigurationError(key: "\(path).per_key", "expected a mapping with max_concurrent and/or rate_limit")
            }
            if let key = Set(mapping.keys).subtracting(perKeyKeys).sorted().first {
                throw ConfigurationError(key: "\(path).per_key.\(key)", "unknown setting (known: max_concurrent, rate_limit)")
            }
            let limits = KeyLimits(
                maxConcurrent: try limit(mapping["max_concurrent"], key: "\(path).per_key.max_concurrent", default: nil),
                rateLimit: try rate(mapping["rate_limit"], key: "\(path).per_key.rate_limit"))
            guard limits.maxConcurrent != nil || limits.rateLimit != nil else {
                throw ConfigurationError(key: "\(path).per_key", "set max_concurrent, rate_limit or both")
            }
            perKey = limits
        }
        return (maxConcurrent, perAgent, rateLimit, perKey)
    }

    static func isValidVariableName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        return name.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
        }
    }
}

extension JSONValue {
    /// A value Yams loaded, as JSON: mappings, sequences, strings, numbers, booleans and null.
    init?(yaml value: Any) {
        switch value {
        case let text as String: self = .string(text)
        case let flag as Bool: self = .bool(flag)
        case let number as Int: self = .integer(Int64(number))
        case let number as Double: self = .double(number)
        case let list as [Any]:
            var items: [JSONValue] = []
            for item in list {
                guard let json = JSONValue(yaml: item) else { return nil }
                items.append(json)
            }
            self = .array(items)
        case let mapping as [String: Any]:
            var members: [String: JSONValue] = [:]
            for (key, item) in mapping {
                guard let json = JSONValue(yaml: item) else { return nil }
                members[key] = json
            }
            self = .object(members)
        case is NSNull: self = .null
        default: return nil
        }
    }
}
