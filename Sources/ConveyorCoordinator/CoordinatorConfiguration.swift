import ConveyorCore
import ConveyorPostgres
import ConveyorRedis

/// Everything a coordinator process needs, validated once at start. Read from the environment and flags
/// by the CLI (`CoordinatorConfiguration+Environment.swift` in the `conveyor` target); services receive
/// their slice and never read the environment themselves.
public struct CoordinatorConfiguration: Sendable {
    public var host: String = "127.0.0.1"
    /// 0 picks a free port (tests).
    public var port: Int = 8080
    /// Accepted bearer tokens, each with a name and scopes. Empty means every /v1 request is refused,
    /// unless ``authDisabled``.
    public var apiTokens: [APIToken] = []
    /// Names given to tokens configured in the old bare form (admin scope): logged as a warning at start.
    public var unnamedTokens: [String] = []
    public var authDisabled: Bool = false
    /// Largest accepted request body.
    public var maxBodyBytes: Int = 1 << 20
    public var registry: TaskTypeRegistry = .builtIn
    public var redis: RedisConfiguration
    public var postgres: PostgresConfiguration
    public var keys: RedisKeys = RedisKeys()
    /// Most tasks the Submitter writes in one transaction.
    public var submitBatchMaxTasks: Int = 5000
    /// Most tasks waiting for the Submitter. A submission that does not fit is shed with 503
    /// `overloaded` and `Retry-After` rather than queued: an accepted request waits for at most the
    /// flush in progress and the flushes these tasks fill, however far the offered load exceeds the
    /// ceiling. One Submitter batch by default: measured at twice the ceiling, 5,000 kept the accepted
    /// requests' P99 at 1.4 s with the throughput at the ceiling, 10,000 gave 2.8 s and less throughput.
    public var submitQueueMaxTasks: Int = 5000
    /// Most events the Recorder reads per stream per batch.
    public var recorderBatchSize: Int = 5000
    /// How long the Recorder waits after a read that did not fill its batch, so that the next one
    /// gathers more (``Linger``): at most one transaction per linger at a light load, a status
    /// visible in PostgreSQL up to this much later. Zero reads again at once.
    public var recorderLinger: Duration = defaultRecorderLinger
    public static let defaultRecorderLinger = Duration.milliseconds(10)
    /// Names this coordinator in logs and as the Recorder's consumer.
    public var instanceID: String
    /// Seconds a client is told to wait (Retry-After) when Redis or PostgreSQL is unavailable.
    public var retryAfterSeconds: Int = 1
    /// How often the leading coordinator's Reconciler looks for tasks Redis does not hold.
    public var reconcileInterval: Duration = .seconds(5)
    /// How often, in the hour after a Redis change, the leading coordinator looks up every unfinished
    /// task in Redis again: the bound on how long a task can stay unfinished after a race with the loss.
    public var reconcileSweep: Duration = defaultReconcileSweep
    public static let defaultReconcileSweep = Duration.seconds(60)
    /// How long a committed task may go without a sign of being in Redis before the Reconciler looks.
    public var dispatchGrace: Duration = .seconds(30)
    /// How long lifecycle events may sit pending with another coordinator's Recorder (one that is gone)
    /// before this one records them.
    public var abandonedEventsAfter: Duration = .seconds(60)
    /// How long finished tasks, their events and idempotency keys are kept.
    public var retention: Duration = defaultRetention
    public static let defaultRetention = Duration.seconds(7 * 86400)
    /// How long a generation of partitions stays open: a seventh of the retention, at most a day, so
    /// about eight generations exist and a finished task outlives the window by at most one span.
    public var generationSpan: Duration { min(.seconds(86400), max(retention / 7, .seconds(1))) }
    /// Most dead letters kept in Redis per queue.
    public var deadLetterLimit: Int = 10_000
    /// Consumers idle this long and holding nothing are removed from the consumer groups.
    public var idleConsumerAfter: Duration = .seconds(900)
    /// How often the ``RedisJanitor`` tidies each queue.
    public var janitorInterval: Duration = .seconds(60)
    /// Where completion webhooks may go (empty: webhooks are off).
    public var webhookHosts = WebhookHostPolicy(allowedHosts: [])
    /// The key of every delivery's signature; required when ``webhookHosts`` allows any host.
    public var webhookSecret: String?
    /// How long a delivery is retried before it is given up.
    public var webhookRetryFor: Duration = .seconds(86_400)
    /// How long one delivery request may take.
    public var webhookTimeout: Duration = .seconds(10)
    /// How long a console sign-in lasts.
    public var consoleSession: Duration = .seconds(8 * 3600)
    /// Grafana's address as a browser reaches it: the console's log links (nil: none).
    public var grafanaURL: String?
    /// The wait between a delivery's tries (tests shorten it).
    public var webhookBackoff: Backoff = WebhookDispatcher.defaultBackoff
    /// Most tasks in one `POST /v1/tasks/batch`.
    public static let maxBatchTasks = 1000
    /// Highest `max_attempts` a task may ask for.
    public static let maxAttemptsLimit = 100

    public init(redis: RedisConfiguration, postgres: PostgresConfiguration, instanceID: String) {
        self.redis = redis
        self.postgres = postgres
        self.instanceID = instanceID
    }

    public func validate() throws(ConfigurationError) {
        guard (0...65535).contains(port) else { throw ConfigurationError(key: "CONVEYOR_HTTP_PORT", "must be 0–65535") }
        guard maxBodyBytes >= 1024 else { throw ConfigurationError(key: "CONVEYOR_MAX_BODY_BYTES", "must be at least 1024") }
        if apiTokens.isEmpty && !authDisabled {
            throw ConfigurationError(
                key: "CONVEYOR_API_TOKENS",
                "no API tokens configured: set CONVEYOR_API_TOKENS=name:scope:secret,… or CONVEYOR_API_TOKENS_FILE (or CONVEYOR_AUTH_DISABLED=true for a trusted network)")
        }
        guard submitBatchMaxTasks >= Self.maxBatchTasks else {
            throw ConfigurationError(key: "CONVEYOR_SUBMIT_BATCH_MAX", "must be at least \(Self.maxBatchTasks)")
        }
        guard submitQueueMaxTasks >= Self.maxBatchTasks else {
            throw ConfigurationError(key: "CONVEYOR_SUBMIT_QUEUE_MAX", "must be at least \(Self.maxBatchTasks) (one whole batch request)")
        }
        guard reconcileInterval >= .milliseconds(10) else { throw ConfigurationError(key: "CONVEYOR_RECONCILE_INTERVAL", "must be at least 10ms") }
        guard abandonedEventsAfter >= .milliseconds(100) else {
            throw ConfigurationError(key: "CONVEYOR_RECORDER_TAKEOVER_AFTER", "must be at least 100ms")
        }
        guard reconcileSweep >= reconcileInterval else {
            throw ConfigurationError(key: "CONVEYOR_RECONCILE_SWEEP", "must be at least CONVEYOR_RECONCILE_INTERVAL")
        }
        guard dispatchGrace >= .zero else { throw ConfigurationError(key: "CONVEYOR_DISPATCH_GRACE", "must not be negative") }
        guard retention >= .seconds(10) else { throw ConfigurationError(key: "CONVEYOR_RETENTION", "must be at least 10s") }
        guard deadLetterLimit > 0 else { throw ConfigurationError(key: "CONVEYOR_DEAD_LETTER_LIMIT", "must be positive") }
        guard idleConsumerAfter >= .seconds(1) else { throw ConfigurationError(key: "CONVEYOR_IDLE_CONSUMER_AFTER", "must be at least 1s") }
        guard recorderBatchSize > 0 else { throw ConfigurationError(key: "CONVEYOR_RECORDER_BATCH", "must be positive") }
        // At most the Recorder's BLOCK: a graceful shutdown waits for neither longer than that.
        guard recorderLinger >= .zero, recorderLinger <= Recorder.block else {
            throw ConfigurationError(key: "CONVEYOR_RECORDER_LINGER", "must be 0 to \(Recorder.block.milliseconds)ms")
        }
        if !webhookHosts.allowedHosts.isEmpty {
            guard let secret = webhookSecret, secret.utf8.count >= 16 else {
                throw ConfigurationError(key: "CONVEYOR_WEBHOOK_SECRET", "required (at least 16 bytes) when CONVEYOR_WEBHOOK_HOSTS allows webhooks")
            }
        }
        for definition in registry.types.values.sorted(by: { $0.name < $1.name }) {
            if let url = definition.callbackURL, let reason = webhookHosts.refusal(for: url) {
                throw ConfigurationError(key: "types.\(definition.name).callback_url", reason)
            }
        }
        guard webhookRetryFor >= .seconds(1) else { throw ConfigurationError(key: "CONVEYOR_WEBHOOK_RETRY_FOR", "must be at least 1s") }
        guard webhookTimeout >= .milliseconds(100) else { throw ConfigurationError(key: "CONVEYOR_WEBHOOK_TIMEOUT", "must be at least 100ms") }
        guard consoleSession >= .seconds(300), consoleSession <= .seconds(7 * 86400) else {
            throw ConfigurationError(key: "CONVEYOR_CONSOLE_SESSION", "must be 5m to 7d")
        }
        if let grafanaURL, !(grafanaURL.hasPrefix("http://") || grafanaURL.hasPrefix("https://")) {
            throw ConfigurationError(key: "CONVEYOR_GRAFANA_URL", "must be an http:// or https:// address")
        }
    }
}
