import AsyncHTTPClient
import ConveyorCore
import ConveyorMetricNames
import ConveyorObservability
import ConveyorPostgres
import ConveyorRedis
import Hummingbird
import Logging
import Metrics
import ServiceLifecycle

/// A coordinator: the HTTP API plus its background services, wired from one configuration.
///
/// Services, in dependency order (the HTTP server runs last, so on SIGTERM it stops first and the
/// Submitter then drains what was already accepted): PartitionMaintainer, Retention, RedisJanitor,
/// TaskWatchHub, WebhookDispatcher, WorkflowAdvancer, Recorder, Forwarder, Reconciler, WorkflowSweeper, ProgressRelay,
/// Submitter, Scheduler, server.
public struct Coordinator: Sendable {
    public let configuration: CoordinatorConfiguration
    public let postgres: PostgresClient
    /// Commands of the Submitter and the API (pipelined, never blocking).
    public let redis: any RedisClient
    /// The Recorder's own connection: XREADGROUP BLOCK holds it while waiting.
    public let recorderRedis: any RedisClient
    public let store: TaskStore
    public let submitter: Submitter
    public let recorder: Recorder
    public let forwarder: Forwarder
    public let deadLetters: DeadLetterQueue
    public let reconciler: Reconciler
    public let workflowStore: WorkflowStore
    /// Dispatches the nodes a join queued and ends finished workflows.
    public let workflowAdvancer: WorkflowAdvancer
    public let workflowSweeper: WorkflowSweeper
    /// Cancels and retries tasks by filter (the bulk routes and the console).
    public let taskActions: TaskActions
    /// What the Recorder saw end, for the console's chart.
    public let throughput = ThroughputHistory()
    /// The console's sign-ins.
    let consoleSessions: ConsoleSessions
    /// The Reconciler's own session: it holds the leader lock while it lives.
    let reconcilerLock: PostgresConnection
    /// The Reconciler's own Redis connection (a census reads whole streams).
    let reconcilerRedis: any RedisClient
    public let partitionMaintainer: PartitionMaintainer
    public let retention: Retention
    public let janitor: RedisJanitor
    /// The janitor's own Redis connection (its census of a queue reads whole streams).
    let janitorRedis: any RedisClient
    /// PartitionMaintainer's and Retention's own PostgreSQL connection: a retention scan may run for
    /// minutes (its deadline is ``GenerationStore/maintenanceTimeout``), and work queued behind it on a
    /// pooled connection would wait as long (the PostgreSQL freeze test caught a submission doing so).
    let maintenancePostgres: PostgresClient
    /// Wakes live streams and long-polls when their task changes (one LISTEN connection).
    public let watchHub: TaskWatchHub
    /// Carries progress reported over HTTP onto the events streams.
    let progressRelay: ProgressRelay
    /// Enqueues the ticks of periodic schedules.
    public let scheduler: Scheduler
    /// The schedules' last ticks (the Scheduler writes them, `GET /v1/schedules` reads them).
    let scheduleStore: ScheduleStore
    /// Pauses of queues and types: the routes write them, the Reconciler restores them after a Redis loss.
    let pauses: QueuePauses
    /// Sends completion webhooks (nil when webhooks are off).
    public let webhooks: WebhookDispatcher?
    /// The webhooks' own HTTP client: redirects off, so an allowed host cannot send the broker elsewhere.
    let webhookClient: HTTPClient?
    let clock: any Clock<Duration>
    let logger: Logger

    /// - Parameter clock: what the periodic services (Forwarder, Reconciler, PartitionMaintainer) sleep
    ///   on; tests pass a `MockClock`.
    public init(configuration: CoordinatorConfiguration, clock: any Clock<Duration> = ContinuousClock(), logger: Logger) {
        self.clock = clock
        // Before any service creates a metric: one created earlier would stay a no-op.
        MetricsExposition.bootstrap()
        // Counters exist from the start at 0, so a rate over them is 0 rather than no data.
        Counter(label: MetricsCatalog.reconciled.name).increment(by: 0)
        for type in configuration.registry.types.keys {
            Counter(label: MetricsCatalog.tasksSubmitted.name, dimensions: [("type", type)]).increment(by: 0)
        }
        self.configuration = configuration
        self.logger = logger
        if !configuration.unnamedTokens.isEmpty {
            logger.warning("tokens without a name and scope get the admin scope; configure name:scope:secret for least privilege",
                           metadata: ["tokens": "\(configuration.unnamedTokens.joined(separator: ","))"])
        }
        self.postgres = PostgresClient(configuration: configuration.postgres, name: "coordinator-pg", logger: logger.with(label: "conveyor.coordinator.postgres"))
        self.redis = RedisClients.make(configuration.redis, name: "coordinator-redis", logger: logger.with(label: "conveyor.coordinator.redis"))
        self.recorderRedis = RedisClients.make(configuration.redis, name: "recorder-redis", logger: logger.with(label: "conveyor.coordinator.redis"))
        self.store = TaskStore(client: postgres)
        let forwarder = Forwarder(
            redis: redis, keys: configuration.keys, queues: configuration.registry.queues, clock: clock,
            logger: logger.with(label: "conveyor.coordinator.forwarder"))
        self.forwarder = forwarder
        self.submitter = Submitter(
            store: store, redis: redis, keys: configuration.keys, maxBatchTasks: configuration.submitBatchMaxTasks,
            queueCapacity: configuration.submitQueueMaxTasks, logger: logger.with(label: "conveyor.coordinator.submitter"),
            onScheduled: { forwarder.nudge(dueAtMillis: $0) })
        if let secret = configuration.webhookSecret, !configuration.webhookHosts.allowedHosts.isEmpty {
            let client = HTTPClient(
                eventLoopGroup: HTTPClient.defaultEventLoopGroup,
                configuration: HTTPClient.Configuration(
                    redirectConfiguration: .disallow,
                    connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)))
            self.webhookClient = client
            self.webhooks = WebhookDispatcher(
                store: WebhookStore(client: postgres), client: client, secret: secret, hosts: configuration.webhookHosts,
                retryFor: configuration.webhookRetryFor, timeout: configuration.webhookTimeout, backoff: configuration.webhookBackoff,
                clock: clock, logger: logger.with(label: "conveyor.coordinator.webhooks"))
        } else {
            self.webhookClient = nil
            self.webhooks = nil
        }
        let webhooks = self.webhooks
        self.workflowStore = WorkflowStore(client: postgres)
        let workflowAdvancer = WorkflowAdvancer(
            workflows: workflowStore, tasks: store, redis: redis, keys: configuration.keys,
            logger: logger.with(label: "conveyor.coordinator.workflows"))
        self.workflowAdvancer = workflowAdvancer
        self.workflowSweeper = WorkflowSweeper(
            store: workflowStore, advancer: workflowAdvancer, interval: configuration.reconcileInterval,
            repairAfter: configuration.dispatchGrace, clock: clock,
            logger: logger.with(label: "conveyor.coordinator.workflows"))
        self.recorder = Recorder(
            store: EventStore(client: postgres), redis: recorderRedis, keys: configuration.keys,
            queues: configuration.registry.queues, consumer: configuration.instanceID,
            batchSize: configuration.recorderBatchSize, linger: configuration.recorderLinger, abandonedAfter: configuration.abandonedEventsAfter, logger: logger.with(label: "conveyor.coordinator.recorder"),
            onWebhooksQueued: { webhooks?.wake() }, onWorkflowAdvance: { await workflowAdvancer.enqueue($0) }, throughput: throughput)
        let submitter = self.submitter
        self.scheduleStore = ScheduleStore(client: postgres)
        self.scheduler = Scheduler(
            registry: configuration.registry, store: scheduleStore, submit: { try await submitter.submit($0) },
            clock: clock, logger: logger.with(label: "conveyor.coordinator.scheduler"))
        self.deadLetters = DeadLetterQueue(
            redis: redis, store: store, keys: configuration.keys, registry: configuration.registry,
            redrivableFor: max(configuration.retention - GenerationStore.redriveMargin, configuration.retention / 2),
            workflows: workflowAdvancer)
        self.taskActions = TaskActions(
            store: store, redis: redis, keys: configuration.keys, deadLetters: deadLetters, workflows: workflowAdvancer,
            workflowStore: workflowStore, retryableFor: deadLetters.redrivableFor,
            logger: logger.with(label: "conveyor.coordinator.actions"), onCancelled: { webhooks?.wake() })
        self.reconcilerLock = PostgresConnection(configuration: configuration.postgres, name: "reconciler-pg", logger: logger.with(label: "conveyor.coordinator.postgres"))
        self.reconcilerRedis = RedisClients.make(configuration.redis, name: "reconciler-redis", logger: logger.with(label: "conveyor.coordinator.redis"))
        let pauses = QueuePauses(store: PauseStore(client: postgres), redis: redis, keys: configuration.keys, registry: configuration.registry)
        self.pauses = pauses
        let reconcilerLogger = logger.with(label: "conveyor.coordinator.reconciler")
        self.reconciler = Reconciler(
            store: store, meta: MetaStore(client: postgres), lock: reconcilerLock, redis: reconcilerRedis, keys: configuration.keys,
            queues: configuration.registry.queues,
            interval: configuration.reconcileInterval, dispatchGrace: configuration.dispatchGrace,
            sweepInterval: configuration.reconcileSweep, clock: clock,
            logger: reconcilerLogger,
            restoreRedisState: {
                let restored = try await pauses.restore()
                if restored > 0 { reconcilerLogger.notice("restored pauses in Redis", metadata: [LogKeys.count: "\(restored)"]) }
            })
        var maintenance = configuration.postgres
        maintenance.poolSize = 1
        self.maintenancePostgres = PostgresClient(configuration: maintenance, name: "maintenance-pg", logger: logger.with(label: "conveyor.coordinator.postgres"))
        self.partitionMaintainer = PartitionMaintainer(
            client: maintenancePostgres, span: configuration.generationSpan, clock: clock, logger: logger.with(label: "conveyor.coordinator.partitions"))
        self.retention = Retention(
            client: maintenancePostgres, retention: configuration.retention, span: configuration.generationSpan, clock: clock,
            logger: logger.with(label: "conveyor.coordinator.retention"))
        self.janitorRedis = RedisClients.make(configuration.redis, name: "janitor-redis", logger: logger.with(label: "conveyor.coordinator.redis"))
        self.janitor = RedisJanitor(
            redis: janitorRedis, keys: configuration.keys, queues: configuration.registry.queues,
            deadLetterLimit: configuration.deadLetterLimit, idleConsumerAfter: configuration.idleConsumerAfter,
            interval: configuration.janitorInterval, clock: clock, logger: logger.with(label: "conveyor.coordinator.janitor"))
        self.watchHub = TaskWatchHub(
            listener: PostgresListener(
                configuration: configuration.postgres, channel: TaskNotifications.channel, logger: logger.with(label: "conveyor.coordinator.watch")),
            client: postgres, logger: logger.with(label: "conveyor.coordinator.watch"))
        self.consoleSessions = ConsoleSessions(
            tokens: configuration.apiTokens, authDisabled: configuration.authDisabled, lifetime: configuration.consoleSession)
        self.progressRelay = ProgressRelay(redis: redis, keys: configuration.keys, clock: clock, logger: logger.with(label: "conveyor.coordinator.progress"))
    }

    /// Applies pending migrations (safe with several coordinators starting at once) and creates the
    /// opens the next generation of partitions if one is due.
    public func migrate() async throws {
        let applied = try await Migrator.migrate(postgres)
        if !applied.isEmpty { logger.info("applied migrations", metadata: ["versions": "\(applied)"]) }
        do {
            _ = try await partitionMaintainer.openNextIfDue()
        } catch {
            // Its service tries again shortly; a busy table must not keep the coordinator from starting.
            logger.warning("could not open the next generation of partitions yet", metadata: ["error": "\(error)"])
        }
    }

    /// The Hummingbird application with every coordinator service attached.
    public func makeApplication(
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let router = try makeRouter()
        var services: [any Service] = [partitionMaintainer, retention, janitor, watchHub]
        if let webhooks { services.append(webhooks) }
        services += [workflowAdvancer, recorder, forwarder, reconciler, workflowSweeper, progressRelay, submitter, scheduler] as [any Service]
        return Application(
            router: router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "conveyor"),
            services: services,
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
            logger: logger
        )
    }

    /// Every route: the API under `/v1`, health, metrics, the OpenAPI document and the console.
    public func makeRouter() throws -> Router<CoordinatorRequestContext> {
        let router = Router(context: CoordinatorRequestContext.self)
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: CorrelationMiddleware())
        router.add(middleware: ErrorMiddleware(maxBodyBytes: configuration.maxBodyBytes))
        let health = router.group()
        if !configuration.authDisabled {
            health.add(middleware: AuthMiddleware(tokens: configuration.apiTokens, required: false))
        }
        HealthRoutes(
            redis: redis, store: store, keys: configuration.keys, registry: configuration.registry,
            retryAfterSeconds: configuration.retryAfterSeconds
        ).register(on: health)
        MetricsRoutes(sampler: QueueSampler(redis: redis, keys: configuration.keys, registry: configuration.registry), hub: watchHub).register(on: router)
        let v1 = router.group("v1")
        if !configuration.authDisabled {
            v1.add(middleware: AuthMiddleware(tokens: configuration.apiTokens, required: true))
        }
        let watch = TaskWatchRoutes(store: store, hub: watchHub, retryAfterSeconds: configuration.retryAfterSeconds)
        TaskRoutes(
            parser: TaskSubmissionParser(registry: configuration.registry, webhookHosts: configuration.webhookHosts),
            submitter: submitter, store: store, watch: watch, redis: redis, keys: configuration.keys,
            workflows: workflowAdvancer, onCancelled: { [webhooks] in webhooks?.wake() },
            maxBodyBytes: configuration.maxBodyBytes, retryAfterSeconds: configuration.retryAfterSeconds
        ).register(on: v1)
        WorkflowRoutes(
            parser: TaskSubmissionParser(registry: configuration.registry, webhookHosts: configuration.webhookHosts),
            store: workflowStore, advancer: workflowAdvancer,
            maxBodyBytes: configuration.maxBodyBytes, retryAfterSeconds: configuration.retryAfterSeconds,
            actions: taskActions
        ).register(on: v1)
        TaskSearchRoutes(
            store: store, actions: taskActions, maxBodyBytes: configuration.maxBodyBytes, retryAfterSeconds: configuration.retryAfterSeconds
        ).register(on: v1)
        watch.register(on: v1)
        TaskProgressRoutes(store: store, relay: progressRelay, retryAfterSeconds: configuration.retryAfterSeconds).register(on: v1)
        DeadLetterRoutes(deadLetters: deadLetters, retryAfterSeconds: configuration.retryAfterSeconds).register(on: v1)
        ScheduleRoutes(registry: configuration.registry, store: scheduleStore, retryAfterSeconds: configuration.retryAfterSeconds)
            .register(on: v1)
        PauseRoutes(pauses: pauses, retryAfterSeconds: configuration.retryAfterSeconds).register(on: v1)
        OpenAPIRoutes().register(on: router)
        let pages = ConsolePages(
            library: try ConsoleTemplates.library(), store: store, workflowStore: workflowStore, scheduleStore: scheduleStore,
            pauseStore: pauses.store, registry: configuration.registry, redis: redis, keys: configuration.keys, throughput: throughput,
            grafanaURL: configuration.grafanaURL, retryAfterSeconds: configuration.retryAfterSeconds)
        ConsoleRoutes(
            pages: pages, sessions: consoleSessions, actions: taskActions, deadLetters: deadLetters, pauses: pauses,
            lifetime: configuration.consoleSession
        ).register(on: router)
        return router
    }

    /// Closes the connections' threads. Call after the application has stopped.
    public func close() {
        redis.close()
        recorderRedis.close()
        reconcilerLock.close()
        reconcilerRedis.close()
        janitorRedis.close()
        maintenancePostgres.close()
        watchHub.close()
        try? webhookClient?.syncShutdown()
        postgres.close()
    }
}
