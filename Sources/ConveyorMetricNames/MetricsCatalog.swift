/// Every metric Conveyor exports: its name, its help text and, for histograms, its buckets. The one
/// place names are spelled, in a module of its own so every module can reach it (the Redis client records
/// its round trips); `ConveyorMetricsFactory` gives Prometheus the help text from here, and the
/// metrics table of docs/operations.md and the Grafana dashboards use these names.
///
/// Names follow Prometheus conventions: a `conveyor_` prefix, base units (seconds, bytes), `_total` on
/// counters.
public enum MetricsCatalog {
    public struct Entry: Sendable {
        public var name: String
        public var help: String
        /// Histogram buckets (seconds for durations); empty for counters and gauges.
        public var buckets: [Double] = []
    }

    package static let latencyBuckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
    package static let runBuckets: [Double] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600]
    package static let sizeBuckets: [Double] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]

    // Coordinator
    public static let tasksSubmitted = Entry(name: "conveyor_tasks_submitted_total", help: "Tasks accepted (committed in PostgreSQL and added to Redis), by type.")
    public static let submissionsShed = Entry(name: "conveyor_submissions_shed_total", help: "Submission requests shed because the Submitter's queue was full (503 overloaded with Retry-After); nothing of them was stored.")
    public static let enqueueDuration = Entry(name: "conveyor_enqueue_duration_seconds", help: "Time to answer a submission (single or batch request), from request to response.", buckets: latencyBuckets)
    public static let httpRequests = Entry(name: "conveyor_http_requests_total", help: "HTTP requests answered, by route, method and status.")
    public static let httpDuration = Entry(name: "conveyor_http_request_duration_seconds", help: "HTTP request latency, by route and method.", buckets: latencyBuckets)
    public static let eventsRecorded = Entry(name: "conveyor_events_recorded_total", help: "Lifecycle events written to PostgreSQL by the Recorder.")
    public static let recorderLag = Entry(name: "conveyor_recorder_lag_seconds", help: "Age of the oldest lifecycle event not yet recorded in PostgreSQL (0 when none waits).")
    public static let queueReady = Entry(name: "conveyor_queue_ready", help: "Entries in a queue's ready stream (backlog plus in flight), sampled from Redis at scrape time.")
    public static let queuePending = Entry(name: "conveyor_queue_pending", help: "Entries of a queue delivered to agents and not yet acknowledged (in flight).")
    public static let queueDelayed = Entry(name: "conveyor_queue_delayed", help: "Entries of a queue's delayed set: retries waiting out their backoff and scheduled tasks not yet due.")
    public static let queueDead = Entry(name: "conveyor_queue_dead", help: "Dead letters of a queue.")
    public static let agentsLive = Entry(name: "conveyor_agents_live", help: "Agents whose heartbeat has not expired.")
    public static let reconciled = Entry(name: "conveyor_reconciler_redispatched_total", help: "Tasks the Reconciler put back into Redis.")
    public static let webhookDeliveries = Entry(name: "conveyor_webhook_deliveries_total", help: "Tries to deliver a completion webhook, by outcome (delivered, failed, gave_up).")
    public static let limitRunning = Entry(name: "conveyor_limit_running", help: "Attempts holding a slot of a type's cluster-wide concurrency limit, sampled from Redis at scrape time.")
    public static let limitMax = Entry(name: "conveyor_limit_max", help: "A type's cluster-wide concurrency limit (max_concurrent).")
    public static let limitWaiting = Entry(name: "conveyor_limit_waiting", help: "Tasks of a type held back, by reason: concurrency (waiting for a slot), rate (waiting for their reserved start), paused.")
    public static let limitUtilisation = Entry(name: "conveyor_limit_utilisation", help: "Share of a type's cluster-wide concurrency limit in use (running / max_concurrent), 0–1.")
    public static let generationsDropped = Entry(name: "conveyor_retention_generations_dropped_total", help: "Generations of tasks and events dropped by retention.")
    public static let deadLettersTrimmed = Entry(name: "conveyor_dead_letters_trimmed_total", help: "Dead letters trimmed from Redis beyond the per-queue bound (their rows stay in PostgreSQL), by queue.")
    public static let consumersRemoved = Entry(name: "conveyor_consumers_removed_total", help: "Idle consumers holding nothing removed from a consumer group, by queue.")
    public static let cancelMarksRemoved = Entry(name: "conveyor_cancel_marks_removed_total", help: "Ids of cancelled tasks no longer in Redis removed from a queue's cancelled set, by queue.")
    public static let taskWatchers = Entry(name: "conveyor_task_watchers", help: "Live task streams and long-polls open on this coordinator, sampled at scrape time.")
    public static let workflowsStarted = Entry(name: "conveyor_workflows_started_total", help: "Workflows accepted (stored with all their nodes), by name.")
    public static let workflowsFinished = Entry(name: "conveyor_workflows_finished_total", help: "Workflows whose nodes have all ended, by name and outcome (succeeded, failed, cancelled).")
    public static let workflowDuration = Entry(name: "conveyor_workflow_duration_seconds", help: "From a workflow's submission to the end of its last node, by name and outcome.", buckets: runBuckets)
    public static let workflowNodesWaiting = Entry(name: "conveyor_workflow_nodes_waiting", help: "Nodes of running workflows waiting for their dependencies, sampled by the WorkflowSweeper.")
    public static let workflowNodesDispatched = Entry(name: "conveyor_workflow_nodes_dispatched_total", help: "Workflow nodes put on their ready streams because their dependencies ended (roots not included).")
    public static let postgresRows = Entry(name: "conveyor_postgres_copy_rows_total", help: "Rows written to PostgreSQL in batches (a COPY, or one INSERT for a small batch), by table.")
    public static let postgresBatch = Entry(name: "conveyor_postgres_batch_rows", help: "Rows per PostgreSQL write batch, by operation.", buckets: sizeBuckets)
    public static let postgresDuration = Entry(name: "conveyor_postgres_batch_duration_seconds", help: "Time of one PostgreSQL write batch (transaction), by operation.", buckets: latencyBuckets)

    // Agent
    public static let tasksCompleted = Entry(name: "conveyor_tasks_completed_total", help: "Attempts finished by agents, by type and outcome (succeeded, retrying, dead, cancelled).")
    public static let taskRun = Entry(name: "conveyor_task_run_seconds", help: "Handler run time of one attempt, by type.", buckets: runBuckets)
    public static let taskEndToEnd = Entry(name: "conveyor_task_end_to_end_seconds", help: "From submission (or redrive) to the final outcome (succeeded, dead or cancelled), retries included, by type.", buckets: runBuckets)
    public static let retries = Entry(name: "conveyor_task_retries_total", help: "Failed attempts scheduled for a retry, by type.")
    public static let timeouts = Entry(name: "conveyor_task_timeouts_total", help: "Attempts stopped at their type's timeout, by type.")
    public static let reclaims = Entry(name: "conveyor_reclaims_total", help: "Tasks taken over from an agent whose lease expired, by queue.")
    public static let throttled = Entry(name: "conveyor_throttled_total", help: "Taken entries held back instead of started, by type and reason (concurrency, rate, paused).")
    public static let inFlight = Entry(name: "conveyor_agent_tasks_in_flight", help: "Tasks an agent holds (running, or waiting for a slot: read ahead, or their type's).")

    // Both
    public static let redisPipeline = Entry(name: "conveyor_redis_pipeline_commands", help: "Commands per Redis round trip (pipeline), by connection.", buckets: sizeBuckets)
    public static let redisRoundTrip = Entry(name: "conveyor_redis_roundtrip_seconds", help: "Time of one Redis pipeline round trip, by connection.", buckets: latencyBuckets)
    public static let logLinesDropped = Entry(name: "conveyor_log_lines_dropped_total", help: "Log lines not shipped to Loki (Loki away, or the buffer full).")
    public static let processCPU = Entry(name: "process_cpu_seconds_total", help: "User and system CPU time spent by the process, in seconds.")
    public static let processResident = Entry(name: "process_resident_memory_bytes", help: "Resident memory of the process, in bytes.")
    public static let processOpenFDs = Entry(name: "process_open_fds", help: "Open file descriptors of the process.")
    public static let processStart = Entry(name: "process_start_time_seconds", help: "Start time of the process since the Unix epoch, in seconds.")

    public static let all: [Entry] = [
        tasksSubmitted, submissionsShed, enqueueDuration, httpRequests, httpDuration, eventsRecorded, recorderLag, queueReady, queuePending,
        queueDelayed, queueDead, agentsLive, reconciled, webhookDeliveries, limitRunning, limitMax, limitWaiting, limitUtilisation, generationsDropped, deadLettersTrimmed, consumersRemoved, cancelMarksRemoved, taskWatchers,
        workflowsStarted, workflowsFinished, workflowDuration, workflowNodesWaiting, workflowNodesDispatched, postgresRows, postgresBatch, postgresDuration, tasksCompleted, taskRun,
        taskEndToEnd, retries, timeouts, reclaims, throttled, inFlight, redisPipeline, redisRoundTrip, logLinesDropped, processCPU, processResident,
        processOpenFDs, processStart,
    ]

    package static let byName: [String: Entry] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
}
