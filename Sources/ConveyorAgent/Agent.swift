import ConveyorCore
import ConveyorMetricNames
import ConveyorRedis
import Hummingbird
import ConveyorObservability
import Logging
import Metrics
import ServiceLifecycle

/// An agent: reads tasks from Redis, runs them, reports their outcomes. Needs Redis only.
///
/// Services in dependency order; shutdown runs in reverse, so the Consumer stops reading first, the
/// Reclaimer stops taking over, the Executor lets running tasks finish while the LeaseKeeper still renews
/// their leases, the Completer flushes every outcome, and the heartbeat entry goes last:
/// `[health endpoint, heartbeat, completer, progressFlusher, leaseKeeper, cancelWatcher, executor, reclaimer, consumer]`.
public struct Agent: Sendable {
    public let configuration: AgentConfiguration
    /// For the Completer and heartbeats (pipelined, never blocking).
    let redis: any RedisClient
    /// The Consumer's own connection: XREADGROUP BLOCK holds it while waiting.
    let readerRedis: any RedisClient
    let executor: Executor
    let completer: Completer
    let consumer: Consumer
    let heartbeat: Heartbeat
    let leaseKeeper: LeaseKeeper
    let reclaimer: Reclaimer
    let cancelWatcher: CancelWatcher
    let progressFlusher: ProgressFlusher
    let logger: Logger

    /// - Parameter clock: what the periodic services (heartbeat, lease renewal, reclaim, cancel checks)
    ///   sleep on; tests pass a `MockClock`.
    /// - Throws: ``ConfigurationError`` when the configuration is invalid or a served type has no handler.
    public init(
        configuration: AgentConfiguration, handlers: HandlerSet = .builtIns, clock: any Clock<Duration> = ContinuousClock(), logger: Logger
    ) throws(ConfigurationError) {
        try configuration.validate()
        // Before any service creates a metric: one created earlier would stay a no-op.
        MetricsExposition.bootstrap()
        // Counters exist from the start at 0, so a rate over them is 0 rather than no data.
        for queue in configuration.servedQueues {
            Counter(label: MetricsCatalog.reclaims.name, dimensions: [("queue", queue)]).increment(by: 0)
        }
        for type in configuration.registry.types.values where configuration.servedQueues.contains(type.queue) {
            Counter(label: MetricsCatalog.retries.name, dimensions: [("type", type.name)]).increment(by: 0)
            Counter(label: MetricsCatalog.timeouts.name, dimensions: [("type", type.name)]).increment(by: 0)
            if type.isFlowControlled {
                for reason in FlowGate.Hold.allCases {
                    Counter(label: MetricsCatalog.throttled.name, dimensions: [("type", type.name), ("reason", reason.rawValue)]).increment(by: 0)
                }
            }
        }
        let resolved = try handlers.resolve(configuration.registry, queues: configuration.servedQueues)
        self.configuration = configuration
        self.logger = logger
        self.redis = RedisClients.make(configuration.redis, name: "agent-redis", logger: logger.with(label: "conveyor.agent.redis"))
        self.readerRedis = RedisClients.make(configuration.redis, name: "agent-reader", logger: logger.with(label: "conveyor.agent.redis"))
        let slots = SlotPool(capacity: configuration.concurrency)
        let ownPendingResumed = Promise<Void>()
        let gate = FlowGate(redis: redis, keys: configuration.keys, registry: configuration.registry)
        self.completer = Completer(
            redis: redis, keys: configuration.keys, registry: configuration.registry, agentID: configuration.agentID,
            batchSize: configuration.completerBatchSize, linger: configuration.completerLinger, gate: gate, logger: logger.with(label: "conveyor.agent.completer"))
        var journal: ExecutionJournal?
        if let path = configuration.executionJournalPath {
            do {
                journal = try ExecutionJournal(path: path)
            } catch {
                throw ConfigurationError(key: "CONVEYOR_EXECUTION_JOURNAL", "cannot open '\(path)': \(error.localizedDescription)")
            }
        }
        self.executor = Executor(
            handlers: resolved, registry: configuration.registry, completer: completer, slots: slots,
            agentID: configuration.agentID, journal: journal, redis: redis, gate: gate, logger: logger.with(label: "conveyor.agent.executor"))
        self.consumer = Consumer(
            redis: readerRedis, keys: configuration.keys, agentID: configuration.agentID,
            queues: configuration.servedQueues, executor: executor, slots: slots, readBlock: configuration.readBlock,
            ownPendingResumed: ownPendingResumed, gate: gate, logger: logger.with(label: "conveyor.agent.consumer"))
        self.heartbeat = Heartbeat(redis: redis, keys: configuration.keys, configuration: configuration, executor: executor, clock: clock, logger: logger.with(label: "conveyor.agent.heartbeat"))
        let served = configuration.registry.types.values.filter { configuration.servedQueues.contains($0.queue) }
        self.leaseKeeper = LeaseKeeper(
            redis: redis, executor: executor, agentID: configuration.agentID,
            shortestLease: served.map(\.lease).min() ?? TaskTypeDefinition.defaultLease, gate: gate, clock: clock,
            logger: logger.with(label: "conveyor.agent.lease-keeper"))
        self.reclaimer = Reclaimer(
            redis: redis, keys: configuration.keys, registry: configuration.registry, queues: configuration.servedQueues,
            agentID: configuration.agentID, executor: executor, slots: slots, gate: gate, ownPendingResumed: ownPendingResumed, clock: clock,
            logger: logger.with(label: "conveyor.agent.reclaimer"))
        self.cancelWatcher = CancelWatcher(redis: redis, keys: configuration.keys, executor: executor, clock: clock, logger: logger.with(label: "conveyor.agent.cancel-watcher"))
        let executor = self.executor
        self.progressFlusher = ProgressFlusher(
            book: executor.progressBook, completer: completer, running: { executor.holds($0) }, clock: clock,
            logger: logger.with(label: "conveyor.agent.progress"))
    }

    /// What in Redis' configuration puts tasks at risk (logged at start).
    public func durabilityWarnings() async -> [String] {
        await redis.durabilityWarnings()
    }

    /// Attempts started by this agent since it began (tests and the demo read it).
    public var executionCount: Int { executor.executionCount }

    /// The agent's services, in start order.
    public var services: [any Service] {
        var services: [any Service] = []
        if let port = configuration.metricsPort {
            services.append(healthEndpoint(port: port))
        }
        services.append(contentsOf: [heartbeat, completer, progressFlusher, leaseKeeper, cancelWatcher, executor, reclaimer, consumer] as [any Service])
        return services
    }

    /// Runs until SIGTERM or SIGINT, then drains within `shutdownGracePeriod`.
    ///
    /// - Parameter leadingServices: started before the agent's own and stopped after them (the Loki
    ///   shipper, so it ships what the agent logs while stopping).
    public func run(shutdownGracePeriod: Duration = .seconds(30), leadingServices: [any Service] = []) async throws {
        var groupConfiguration = ServiceGroupConfiguration(services: leadingServices + services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = shutdownGracePeriod
        groupConfiguration.maximumCancellationDuration = .seconds(10)
        try await ServiceGroup(configuration: groupConfiguration).run()
        close()
    }

    public func close() {
        redis.close()
        readerRedis.close()
    }

    private func healthEndpoint(port: Int) -> some Service {
        let router = Router()
        let executor = self.executor
        let agentID = configuration.agentID
        router.get("health") { _, _ -> Response in
            let body = "{\"status\":\"ok\",\"agent\":\"\(agentID)\",\"executions\":\(executor.executionCount)}"
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        router.get("metrics") { request, _ -> Response in
            guard Observability.isEnabled else { return Response(status: .notFound) }
            Gauge(label: MetricsCatalog.inFlight.name, dimensions: [("agent", agentID)]).record(executor.heldDeliveries.count)
            let (body, gzipped) = MetricsExposition.render(acceptEncoding: request.headers[.acceptEncoding])
            var headers: HTTPFields = [.contentType: MetricsExposition.contentType]
            if gzipped { headers[.contentEncoding] = "gzip" }
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        return Application(
            router: router,
            configuration: .init(address: .hostname(configuration.metricsHost, port: port), serverName: "conveyor-agent"),
            logger: logger)
    }
}
