/// One configuration setting: its environment variable, the flag that overrides it, its default and
/// what it does. ``Settings/all`` is the single list the CLI reads and docs/configuration.md's table
/// documents (a test checks that it names every one).
public struct Setting: Sendable, Hashable {
    public var environmentVariable: String
    public var flag: String?
    public var defaultValue: String
    public var summary: String
    /// Read when ``environmentVariable`` is not set: the name a hosting platform uses (`DATABASE_URL`).
    public var fallbackEnvironmentVariable: String?
    /// Whether the value is a secret (a password in a URL, a token): never logged or echoed.
    public var isSecret: Bool

    public init(
        environmentVariable: String, flag: String?, defaultValue: String, summary: String,
        fallbackEnvironmentVariable: String? = nil, isSecret: Bool = false
    ) {
        self.environmentVariable = environmentVariable
        self.flag = flag
        self.defaultValue = defaultValue
        self.summary = summary
        self.fallbackEnvironmentVariable = fallbackEnvironmentVariable
        self.isSecret = isSecret
    }

    /// The swift-configuration key; `EnvironmentVariablesProvider` maps it back to the variable.
    public var configurationKey: String { environmentVariable.lowercased() }
}

public enum Settings {
    public static let redisURL = Setting(environmentVariable: "CONVEYOR_REDIS_URL", flag: "--redis-url", defaultValue: "redis://127.0.0.1:6379/0", summary: "Redis, as redis://[user:password@]host:port/db; REDIS_URL is read when this is unset.", fallbackEnvironmentVariable: "REDIS_URL", isSecret: true)
    public static let redisPrefix = Setting(environmentVariable: "CONVEYOR_REDIS_PREFIX", flag: nil, defaultValue: "conveyor", summary: "Prefix of every Redis key.")
    public static let postgresURL = Setting(environmentVariable: "CONVEYOR_POSTGRES_URL", flag: "--postgres-url", defaultValue: "postgres://postgres@127.0.0.1:5432/conveyor", summary: "PostgreSQL, as postgres://user:password@host:port/database (coordinator and migrate only); DATABASE_URL is read when this is unset.", fallbackEnvironmentVariable: "DATABASE_URL", isSecret: true)
    public static let redisTimeout = Setting(environmentVariable: "CONVEYOR_REDIS_TIMEOUT", flag: nil, defaultValue: "3s", summary: "How long a Redis round trip may wait for its replies (beyond a blocking read's own wait) before the connection is dropped and the caller gets an error (a submission: 503).")
    public static let postgresStatementTimeout = Setting(environmentVariable: "CONVEYOR_POSTGRES_STATEMENT_TIMEOUT", flag: nil, defaultValue: "5s", summary: "How long one PostgreSQL statement may wait for an answer before its connection is dropped (the server's own statement_timeout is 1 s less); migrations get 10 min.")
    public static let postgresConnectTimeout = Setting(environmentVariable: "CONVEYOR_POSTGRES_CONNECT_TIMEOUT", flag: nil, defaultValue: "3s", summary: "How long opening a PostgreSQL connection may take (libpq connect_timeout, at least 2 s); TCP keepalives are on.")
    public static let postgresPoolSize = Setting(environmentVariable: "CONVEYOR_POSTGRES_POOL_SIZE", flag: nil, defaultValue: "4", summary: "PostgreSQL connections per coordinator.")
    public static let taskTypes = Setting(environmentVariable: "CONVEYOR_TASK_TYPES", flag: "--task-types", defaultValue: "(built-in: noop, sleep, echo, fail)", summary: "Path of the task-type registry (YAML).")
    public static let httpHost = Setting(environmentVariable: "CONVEYOR_HTTP_HOST", flag: "--host", defaultValue: "127.0.0.1", summary: "Address the coordinator's HTTP API listens on.")
    public static let httpPort = Setting(environmentVariable: "CONVEYOR_HTTP_PORT", flag: "--port", defaultValue: "8080", summary: "Port of the coordinator's HTTP API.")
    public static let apiTokens = Setting(environmentVariable: "CONVEYOR_API_TOKENS", flag: nil, defaultValue: "(none: required)", summary: "Bearer tokens accepted by /v1, comma-separated, each name:scope[+scope]:secret with scopes submit, read, admin (a bare secret is an admin token, for compatibility).", isSecret: true)
    public static let apiTokensFile = Setting(environmentVariable: "CONVEYOR_API_TOKENS_FILE", flag: nil, defaultValue: "(none)", summary: "A file of more tokens, one name:scope:secret per line (# comments); keeps secrets out of the environment.")
    public static let authDisabled = Setting(environmentVariable: "CONVEYOR_AUTH_DISABLED", flag: nil, defaultValue: "false", summary: "true lets /v1 run without tokens (trusted networks only).")
    public static let maxBodyBytes = Setting(environmentVariable: "CONVEYOR_MAX_BODY_BYTES", flag: nil, defaultValue: "1048576", summary: "Largest request body; larger gets 413.")
    public static let submitBatchMax = Setting(environmentVariable: "CONVEYOR_SUBMIT_BATCH_MAX", flag: nil, defaultValue: "5000", summary: "Most tasks committed in one Submitter transaction.")
    public static let submitQueueMax = Setting(environmentVariable: "CONVEYOR_SUBMIT_QUEUE_MAX", flag: nil, defaultValue: "5000", summary: "Most submitted tasks waiting for the Submitter; a request that does not fit is shed with 503 overloaded and Retry-After (the bound on an accepted request's wait).")
    public static let recorderBatch = Setting(environmentVariable: "CONVEYOR_RECORDER_BATCH", flag: nil, defaultValue: "5000", summary: "Most lifecycle events the Recorder reads per stream per batch (read as entries of up to 32 events).")
    public static let recorderLinger = Setting(environmentVariable: "CONVEYOR_RECORDER_LINGER", flag: nil, defaultValue: "10ms", summary: "How long the Recorder waits after a read that did not fill its batch, so that a light load shares a transaction among more events (0–1000ms; 0 reads again at once). A status reaches PostgreSQL up to this much later.")
    public static let instanceID = Setting(environmentVariable: "CONVEYOR_INSTANCE_ID", flag: nil, defaultValue: "coordinator-<hostname>", summary: "Coordinator name in logs and as the Recorder's consumer (keep it stable across restarts).")
    public static let agentID = Setting(environmentVariable: "CONVEYOR_AGENT_ID", flag: "--agent-id", defaultValue: "<hostname>-<pid>", summary: "Agent name: its consumer in the streams and its heartbeat entry.")
    public static let agentConcurrency = Setting(environmentVariable: "CONVEYOR_AGENT_CONCURRENCY", flag: "--concurrency", defaultValue: "64", summary: "Most tasks one agent runs at once (all types).")
    public static let completerLinger = Setting(environmentVariable: "CONVEYOR_COMPLETER_LINGER", flag: nil, defaultValue: "10ms", summary: "How long an agent's Completer waits after a batch that left nothing behind, so that a light load shares one Redis script call among more outcomes (0–100ms; 0 flushes again at once). An outcome reaches Redis up to this much later; the agent's slot is freed when the outcome is queued, and an outcome of a type with a cluster-wide limit ends the wait, so the next task never waits.")
    public static let agentQueues = Setting(environmentVariable: "CONVEYOR_AGENT_QUEUES", flag: "--queues", defaultValue: "(every queue of the registry)", summary: "Comma-separated queues an agent serves.")
    public static let metricsPort = Setting(environmentVariable: "CONVEYOR_METRICS_PORT", flag: "--metrics-port", defaultValue: "(none)", summary: "Port of the agent's HTTP endpoint (/health and /metrics).")
    public static let reconcileInterval = Setting(environmentVariable: "CONVEYOR_RECONCILE_INTERVAL", flag: nil, defaultValue: "5s", summary: "How often the leading coordinator compares PostgreSQL with Redis (lost or undispatched tasks).")
    public static let reconcileSweep = Setting(environmentVariable: "CONVEYOR_RECONCILE_SWEEP", flag: nil, defaultValue: "1m", summary: "How often, in the hour after Redis restarted or lost its data, the leading coordinator looks up every unfinished task in Redis again (bounds how long a task can stay unfinished after a race with the loss).")
    public static let dispatchGrace = Setting(environmentVariable: "CONVEYOR_DISPATCH_GRACE", flag: nil, defaultValue: "30s", summary: "Age after which a committed task with no sign of being in Redis is looked up and dispatched again.")
    public static let recorderTakeoverAfter = Setting(environmentVariable: "CONVEYOR_RECORDER_TAKEOVER_AFTER", flag: nil, defaultValue: "60s", summary: "How long lifecycle events may wait with another coordinator's Recorder (one that is gone) before this one records them.")
    public static let retention = Setting(environmentVariable: "CONVEYOR_RETENTION", flag: nil, defaultValue: "7d", summary: "How long finished tasks, their events and idempotency keys are kept (removed a generation of partitions at a time, within a seventh of this, at most a day, later).")
    public static let deadLetterLimit = Setting(environmentVariable: "CONVEYOR_DEAD_LETTER_LIMIT", flag: nil, defaultValue: "10000", summary: "Most dead letters kept in Redis per queue (the oldest are trimmed; their rows stay in PostgreSQL and can still be redriven).")
    public static let idleConsumerAfter = Setting(environmentVariable: "CONVEYOR_IDLE_CONSUMER_AFTER", flag: nil, defaultValue: "15m", summary: "Consumers (stopped agents and coordinators) idle this long and holding nothing are removed from the consumer groups.")
    public static let fault = Setting(environmentVariable: "CONVEYOR_FAULT", flag: nil, defaultValue: "(none)", summary: "Testing only: crash with SIGKILL at named points, e.g. crash-after-commit:0.05 (see docs/architecture.md).")
    public static let executionJournal = Setting(environmentVariable: "CONVEYOR_EXECUTION_JOURNAL", flag: nil, defaultValue: "(none)", summary: "Testing only: an agent appends `task attempt agent ms` per attempt started to this file.")
    public static let metricsHost = Setting(environmentVariable: "CONVEYOR_METRICS_HOST", flag: nil, defaultValue: "127.0.0.1", summary: "Address the agent's HTTP endpoint listens on (0.0.0.0 in a container).")
    public static let shutdownGrace = Setting(environmentVariable: "CONVEYOR_SHUTDOWN_GRACE", flag: nil, defaultValue: "30s", summary: "How long SIGTERM waits for in-flight work before cancelling it.")
    public static let observabilityEnabled = Setting(environmentVariable: "CONVEYOR_OBSERVABILITY_ENABLED", flag: nil, defaultValue: "true", summary: "false turns metrics (/metrics answers 404) and per-task log lines below warning off.")
    public static let taskLogSample = Setting(environmentVariable: "CONVEYOR_TASK_LOG_SAMPLE", flag: nil, defaultValue: "1", summary: "Fraction of tasks (0–1, chosen by task id, the same in every process) whose per-task info lines are logged; warnings and errors always are.")
    public static let lokiURL = Setting(environmentVariable: "CONVEYOR_LOKI_URL", flag: nil, defaultValue: "(none)", summary: "Also push log lines to this Loki (http://loki:3100): batched, gzip, labels service and level; dropped and counted when Loki is away.")
    public static let logLevel = Setting(environmentVariable: "CONVEYOR_LOG_LEVEL", flag: nil, defaultValue: "info", summary: "trace, debug, info, notice, warning, error or critical.")
    public static let logFormat = Setting(environmentVariable: "CONVEYOR_LOG_FORMAT", flag: nil, defaultValue: "(text on a terminal, else json)", summary: "json or text.")
    public static let webhookHosts = Setting(environmentVariable: "CONVEYOR_WEBHOOK_HOSTS", flag: nil, defaultValue: "(none: webhooks off)", summary: "Hosts completion webhooks may call, comma-separated (`hooks.example.com`, `*.example.com`, `*` for any); a callback_url elsewhere gets 422.")
    public static let webhookSecret = Setting(environmentVariable: "CONVEYOR_WEBHOOK_SECRET", flag: nil, defaultValue: "(none: webhooks off)", summary: "The HMAC-SHA256 key of the Conveyor-Signature header of every webhook delivery (at least 16 bytes); required with CONVEYOR_WEBHOOK_HOSTS.", isSecret: true)
    public static let webhookRetryFor = Setting(environmentVariable: "CONVEYOR_WEBHOOK_RETRY_FOR", flag: nil, defaultValue: "24h", summary: "How long a webhook delivery is retried (exponential backoff, 1 s to 10 min) before it is given up and recorded as failed.")
    public static let webhookTimeout = Setting(environmentVariable: "CONVEYOR_WEBHOOK_TIMEOUT", flag: nil, defaultValue: "10s", summary: "How long one webhook request may take.")
    public static let consoleSession = Setting(environmentVariable: "CONVEYOR_CONSOLE_SESSION", flag: nil, defaultValue: "8h", summary: "How long a console sign-in lasts (the session cookie's lifetime; 5m to 7d).")
    public static let grafanaURL = Setting(environmentVariable: "CONVEYOR_GRAFANA_URL", flag: nil, defaultValue: "(none: no log links)", summary: "Grafana's address as a browser reaches it (http://grafana.example:3000): the console links each task to the task-logs dashboard there.")
    public static let clientURL = Setting(environmentVariable: "CONVEYOR_URL", flag: "--url", defaultValue: "http://127.0.0.1:8080", summary: "Coordinator URL used by `conveyor tasks`.")
    public static let clientToken = Setting(environmentVariable: "CONVEYOR_API_TOKEN", flag: "--token", defaultValue: "(none)", summary: "Bearer token used by `conveyor tasks`.", isSecret: true)

    public static let all: [Setting] = [
        redisURL, redisPrefix, redisTimeout, postgresURL, postgresPoolSize, postgresStatementTimeout, postgresConnectTimeout, taskTypes, httpHost, httpPort, apiTokens, apiTokensFile, authDisabled,
        maxBodyBytes, submitBatchMax, submitQueueMax, recorderBatch, recorderLinger, instanceID, agentID, agentConcurrency, agentQueues, completerLinger, metricsPort, metricsHost,
        reconcileInterval, reconcileSweep, dispatchGrace, recorderTakeoverAfter, retention, deadLetterLimit, idleConsumerAfter, webhookHosts, webhookSecret, webhookRetryFor, webhookTimeout, shutdownGrace, observabilityEnabled, taskLogSample, lokiURL, logLevel, logFormat, consoleSession, grafanaURL, clientURL, clientToken, fault, executionJournal,
    ]
}
