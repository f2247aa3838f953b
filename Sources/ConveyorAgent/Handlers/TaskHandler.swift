import ConveyorCore
import ConveyorObservability
import Logging

/// Runs tasks of one type. The public embedding API: a Swift program that embeds an agent registers its
/// own handlers in a ``HandlerSet`` under the names its task-type registry uses.
///
/// Delivery is at-least-once: the same task may run again (after a crash or a lost acknowledgement), so a
/// handler should be idempotent; ``TaskContext/id`` and ``TaskContext/attempt`` help it be.
/// A handler must not block its thread: await instead (the agent runs many handlers at once).
public protocol TaskHandler: Sendable {
    /// Returns the task's result (stored as JSON), or nil for none. Throw ``TaskFailure`` to fail the
    /// attempt with a message (and say whether a retry can help); any other error fails it as retryable.
    func handle(_ task: TaskContext) async throws -> JSONValue?

    /// True for a handler that returns without suspending (it never awaits I/O, a sleep or a child
    /// process), so it can neither outlive its timeout nor be worth cancelling mid-run. The Executor then
    /// calls it directly, without the three child tasks and the timer that watch an ordinary attempt:
    /// at the throughput ceiling those cost the agent more than the task itself. Defaults to false.
    var returnsWithoutSuspending: Bool { get }
}

extension TaskHandler {
    public var returnsWithoutSuspending: Bool { false }
}

/// What a handler knows about the task it runs.
public struct TaskContext: Sendable {
    public var id: TaskID
    public var type: String
    /// 1 for the first attempt.
    public var attempt: Int
    public var maxAttempts: Int
    public var correlationID: String
    public var params: JSONValue
    /// The params exactly as submitted (compact JSON), for handlers that pass them on.
    public var paramsJSON: String
    /// Carries `correlation_id`, `task_id`, `task_type` and `attempt` metadata.
    ///
    /// In an agent it is built when read, not for every attempt: most handlers never log, and setting
    /// four metadata values for every task was about 7 % of an agent's CPU at the ceiling. Each read
    /// builds it again, so a handler that logs many lines keeps it in a local.
    public var logger: Logger {
        get { explicitLogger ?? baseLogger.forTask(id: id, type: type, attempt: attempt, correlationID: correlationID) }
        set { explicitLogger = newValue }
    }
    /// The logger given (or set) as it is; nil while ``logger`` is the task's metadata over ``baseLogger``.
    private var explicitLogger: Logger?
    private var baseLogger: Logger
    /// The attempt is stopped at this time (the type's `timeout`).
    public var timeout: Duration
    /// A workflow node's dependencies, by node key: `{"<key>": {"task_id", "status", "result" | "error"}}`
    /// as compact JSON (nil for a task outside a workflow and for a workflow's roots). A node started by
    /// policy `run` finds here which dependencies did not succeed.
    public var dependenciesJSON: String?
    /// ``dependenciesJSON`` parsed once: each dependency's entry by node key (empty when there are none).
    public var dependencies: [String: JSONValue] = [:]
    /// Where ``reportProgress(_:)`` goes: the agent's throttle (nil outside an agent, e.g. in a test).
    var progressSink: ProgressBook.Sink?

    public init(
        id: TaskID, type: String, attempt: Int, maxAttempts: Int, correlationID: String, params: JSONValue, paramsJSON: String,
        logger: Logger, timeout: Duration
    ) {
        self.progressSink = nil
        self.id = id
        self.type = type
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.correlationID = correlationID
        self.params = params
        self.paramsJSON = paramsJSON
        self.explicitLogger = logger
        self.baseLogger = logger
        self.timeout = timeout
    }

    /// A context whose ``logger`` adds the task's metadata to `base` when first read.
    init(
        id: TaskID, type: String, attempt: Int, maxAttempts: Int, correlationID: String, params: JSONValue, paramsJSON: String,
        taskMetadataOver base: Logger, timeout: Duration
    ) {
        self.init(
            id: id, type: type, attempt: attempt, maxAttempts: maxAttempts, correlationID: correlationID, params: params,
            paramsJSON: paramsJSON, logger: base, timeout: timeout)
        explicitLogger = nil
    }
}

extension Logger {
    /// This logger with a task attempt's metadata, as every line about the attempt carries it. With
    /// observability off (the load generator's ceiling runs) only warnings and errors are written.
    func forTask(id: TaskID, type: String, attempt: Int, correlationID: String) -> Logger {
        var logger = self
        // The values as they are (rendered only if a line is written), not interpolated for every task.
        logger[metadataKey: LogKeys.correlationID] = .string(correlationID)
        logger[metadataKey: LogKeys.taskID] = .stringConvertible(id)
        logger[metadataKey: LogKeys.taskType] = .string(type)
        logger[metadataKey: LogKeys.attempt] = .stringConvertible(attempt)
        if !Observability.isEnabled { logger.logLevel = max(logger.logLevel, .warning) }
        return logger
    }
}

extension TaskContext {
    /// The result of the dependency with node key `key`, when it succeeded with one.
    public func result(of key: String) -> JSONValue? {
        guard case .object(let entry)? = dependencies[key], entry["status"] == .string("succeeded") else { return nil }
        return entry["result"]
    }

    /// Tells the task's caller how far the attempt has got. Cheap enough to call in a tight loop: the
    /// agent keeps only the latest report and sends about one per second (the last one always goes
    /// out before the outcome). Shown by `GET /v1/tasks/{id}`, its history and its live stream.
    public func reportProgress(_ progress: TaskProgress) {
        progressSink?.report(progress)
    }

    /// ``reportProgress(_:)`` from its parts; throws when they are out of range (a fraction above 1, a
    /// step past the total, an overlong message).
    public func reportProgress(fraction: Double? = nil, step: Int? = nil, totalSteps: Int? = nil, message: String? = nil) throws(ProgressError) {
        reportProgress(try TaskProgress(fraction: fraction, step: step, totalSteps: totalSteps, message: message))
    }
}

/// A failed attempt, as a handler reports it.
public struct TaskFailure: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    /// False when retrying cannot help (bad params, a permanent refusal): the task fails at once.
    public var retryable: Bool
    /// The least wait before the next attempt (a service said `Retry-After`); nil: the type's backoff.
    public var retryAfter: Duration?

    public init(_ message: String, retryable: Bool = true, retryAfter: Duration? = nil) {
        self.message = message
        self.retryable = retryable
        self.retryAfter = retryAfter
    }

    public static func permanent(_ message: String) -> TaskFailure {
        TaskFailure(message, retryable: false)
    }

    public var description: String { message }
}

/// A closure as a handler.
public struct ClosureHandler: TaskHandler {
    private let body: @Sendable (TaskContext) async throws -> JSONValue?

    public init(_ body: @escaping @Sendable (TaskContext) async throws -> JSONValue?) {
        self.body = body
    }

    public func handle(_ task: TaskContext) async throws -> JSONValue? {
        try await body(task)
    }
}
