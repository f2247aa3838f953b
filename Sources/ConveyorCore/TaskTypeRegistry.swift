
/// How one task type is run: which queue carries it, how many run at once and how fast they start
/// (across the whole cluster, and on one agent), for how long, how often it is tried, and by which handler.
public struct TaskTypeDefinition: Sendable, Hashable {
    public var name: String
    public var queue: String
    /// Most attempts of this type running at once across every agent; nil for no limit. A slot is
    /// tied to the attempt's lease: a dead agent's slot comes back when the lease expires.
    public var maxConcurrent: Int?
    /// Most attempts of this type running at once on one agent; nil for no limit beyond the agent's own.
    public var maxConcurrentPerAgent: Int?
    /// How fast attempts of this type may start across every agent; nil for no limit.
    public var rateLimit: RateLimit?
    /// The limits of each `limit_key` value within this type; nil when keys are not limited.
    public var perKey: KeyLimits?
    /// A longer attempt is stopped and counts as failed.
    public var timeout: Duration
    public var maxAttempts: Int
    /// A built-in handler (`noop`, `sleep`, `echo`, `fail`, `steps`, `command`) or the name an embedding program
    /// registered an in-process handler under.
    public var handler: String
    /// For the `command` handler: the executable and its arguments.
    public var command: [String]
    /// For the `command` handler: the most stdout bytes accepted as a result.
    public var maxOutputBytes: Int
    /// Retries wait `random(0, min(backoffMax, backoffBase × 2^(attempt-1)))` (full jitter).
    public var backoffBase: Duration
    public var backoffMax: Duration

    /// How long a delivered task may go without its agent renewing it (the pending entry's idle time)
    /// before another agent takes it over. Agents renew every lease/3 while the task runs.
    public var lease: Duration
    /// For `command` types: variables the command gets besides the task's own (the registry's `env:`).
    public var environment: [String: String]
    /// For the `http` handler: the worker service the agent POSTs each task to.
    public var url: String?
    /// The completion webhook of this type's tasks when a submission names none.
    public var callbackURL: String?

    /// Whether starting an attempt of this type must ask Redis for a slot or a token first.
    public var isFlowControlled: Bool {
        maxConcurrent != nil || rateLimit != nil || perKey?.maxConcurrent != nil || perKey?.rateLimit != nil
    }

    /// The backoff between this type's attempts.
    public var backoff: Backoff { Backoff(base: backoffBase, maximum: backoffMax) }

    public static let defaultQueue = "default"
    public static let defaultMaxConcurrent = 5
    public static let defaultTimeout = Duration.seconds(300)
    public static let defaultMaxAttempts = 3
    public static let defaultMaxOutputBytes = 1 << 20
    public static let defaultLease = Duration.seconds(30)
    public static let defaultBackoffBase = Duration.seconds(1)
    public static let defaultBackoffMax = Duration.seconds(600)

    public init(
        name: String, queue: String = defaultQueue, maxConcurrent: Int? = defaultMaxConcurrent,
        maxConcurrentPerAgent: Int? = nil, rateLimit: RateLimit? = nil, perKey: KeyLimits? = nil, timeout: Duration = defaultTimeout, maxAttempts: Int = defaultMaxAttempts, handler: String,
        command: [String] = [], maxOutputBytes: Int = defaultMaxOutputBytes,
        backoffBase: Duration = defaultBackoffBase, backoffMax: Duration = defaultBackoffMax,
        lease: Duration = defaultLease, environment: [String: String] = [:], url: String? = nil, callbackURL: String? = nil
    ) {
        self.url = url
        self.callbackURL = callbackURL
        self.environment = environment
        self.name = name
        self.queue = queue
        self.maxConcurrent = maxConcurrent
        self.maxConcurrentPerAgent = maxConcurrentPerAgent
        self.rateLimit = rateLimit
        self.perKey = perKey
        self.timeout = timeout
        self.maxAttempts = maxAttempts
        self.handler = handler
        self.command = command
        self.maxOutputBytes = maxOutputBytes
        self.backoffBase = backoffBase
        self.backoffMax = backoffMax
        self.lease = lease
    }
}

/// Every task type the broker knows. The coordinator rejects unknown types with 422; agents look up
/// queue, concurrency, timeout and handler here.
public struct TaskTypeRegistry: Sendable, Hashable {
    public private(set) var types: [String: TaskTypeDefinition]
    /// Periodic schedules, by name.
    public private(set) var schedules: [ScheduleDefinition]

    /// Handlers every agent has without any registration.
    public static let builtInHandlers: Set<String> = ["noop", "sleep", "echo", "fail", "steps", "command", "http"]

    public init(_ definitions: [TaskTypeDefinition], schedules: [ScheduleDefinition] = []) {
        self.types = Dictionary(definitions.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
        self.schedules = schedules.sorted { $0.name < $1.name }
    }

    public subscript(name: String) -> TaskTypeDefinition? { types[name] }

    /// The lease of a type, or the default for an unknown one.
    public func lease(of type: String) -> Duration { types[type]?.lease ?? TaskTypeDefinition.defaultLease }

    /// Every queue some type is routed to, sorted.
    public var queues: [String] { Set(types.values.map(\.queue)).sorted() }

    /// The registry used when `CONVEYOR_TASK_TYPES` is unset: the five built-in demo handlers, each a
    /// type of the same name on the `default` queue. They are what the load generator measures, so they
    /// have no cluster-wide limit; only a per-agent one.
    public static let builtIn = TaskTypeRegistry([
        TaskTypeDefinition(name: "noop", maxConcurrent: nil, maxConcurrentPerAgent: 1000, handler: "noop"),
        TaskTypeDefinition(name: "sleep", maxConcurrent: nil, maxConcurrentPerAgent: 50, handler: "sleep"),
        TaskTypeDefinition(name: "echo", maxConcurrent: nil, maxConcurrentPerAgent: 100, handler: "echo"),
        TaskTypeDefinition(name: "fail", maxConcurrent: nil, maxConcurrentPerAgent: 5, handler: "fail"),
        TaskTypeDefinition(name: "steps", maxConcurrent: nil, maxConcurrentPerAgent: 100, handler: "steps"),
    ])

    /// Type and queue names end up in Redis keys, label values and log lines: keep them plain.
    public static func isValidName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 100 else { return false }
        return name.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: ":")
        }
    }
}
