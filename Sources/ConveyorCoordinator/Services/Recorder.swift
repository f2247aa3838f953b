import ConveyorCore
import ConveyorFaults
import ConveyorMetricNames
import ConveyorObservability
import ConveyorPostgres
import ConveyorRedis
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Records what agents report: reads lifecycle events from every queue's events stream in large
/// batches, writes them to PostgreSQL (COPY into `task_events`, forward-only merge into `tasks`, one
/// transaction), and only then acknowledges and deletes them in Redis.
///
/// Wakes on XREADGROUP … BLOCK; after a read that did not fill its batch, waits out its
/// ``Linger`` first, so that a light load shares one transaction among the events of a few
/// milliseconds instead of paying one for every handful. At start, and after any failure, it first
/// re-reads its own pending entries (`0`) before new ones (`>`): events are acknowledged only after
/// their COMMIT, so a crash or an outage replays them, and the replay changes nothing (deterministic
/// event ids, forward-only merge). An undecodable event is logged and dropped rather than blocking the
/// stream forever.
///
/// Events left pending by a coordinator that is gone for good (another instance id) would never be
/// recorded: every `abandonedAfter` the Recorder takes over events idle that long (XAUTOCLAIM) and
/// records them as its own. Recording twice changes nothing, so taking a slow peer's events is harmless.
///
/// Graceful shutdown: finishes the batch in hand and returns within one BLOCK interval.
public final class Recorder: Service, Sendable {
    private let store: EventStore
    private let redis: any RedisClient
    private let keys: RedisKeys
    private let queues: [String]
    private let consumer: String
    private let batchSize: Int
    private let linger: Linger
    private let logger: Logger
    /// How long an event may sit pending with another Recorder before this one takes it over.
    private let abandonedAfter: Duration
    private let stopping = Atomic<Bool>(false)
    /// Called after a batch queued completion webhooks (the WebhookDispatcher's wakeup).
    private let onWebhooksQueued: @Sendable () -> Void
    /// Hands over, after the COMMIT, what ended workflow nodes decided (to the WorkflowAdvancer).
    private let onWorkflowAdvance: @Sendable (WorkflowAdvance) async -> Void
    /// The console's throughput chart: the ends of each recorded batch, counted.
    private let throughput: ThroughputHistory?

    /// Also the longest ``Linger`` (`CoordinatorConfiguration.validate`): a graceful shutdown
    /// waits for one or the other, never both.
    static let block = Duration.seconds(1)

    /// Entries per stream per read: an entry holds one event or up to ``Scripts/eventsPerBatchEntry``
    /// (an agent's batch), so a read holds at most `batchSize` events per stream.
    private var readCount: Int { max(1, batchSize / Scripts.eventsPerBatchEntry) }
    static let backoff = Backoff(base: .milliseconds(100), maximum: .seconds(5))

    /// - Parameter redis: a connection of its own: XREADGROUP BLOCK holds it while waiting.
    public init(
        store: EventStore, redis: any RedisClient, keys: RedisKeys, queues: [String], consumer: String, batchSize: Int,
        linger: Duration, abandonedAfter: Duration = .seconds(60), logger: Logger, onWebhooksQueued: @escaping @Sendable () -> Void = {},
        onWorkflowAdvance: @escaping @Sendable (WorkflowAdvance) async -> Void = { _ in }, throughput: ThroughputHistory? = nil
    ) {
        self.throughput = throughput
        self.onWebhooksQueued = onWebhooksQueued
        self.onWorkflowAdvance = onWorkflowAdvance
        self.abandonedAfter = abandonedAfter
        self.store = store
        self.redis = redis
        self.keys = keys
        self.queues = queues
        self.consumer = consumer
        self.batchSize = batchSize
        self.linger = Linger(duration: linger)
        self.logger = logger
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await loop()
        } onGracefulShutdown: {
            self.stopping.store(true, ordering: .relaxed)
        }
    }

    private var shouldStop: Bool { stopping.load(ordering: .relaxed) || Task.isCancelled }

    private func loop() async {
        let streams = queues.map(keys.events)
        var failures = 0
        var groupsReady = false
        var readingPending = true
        let clock = ContinuousClock()
        var lastTakeover = clock.now
        var lastRead: (at: ContinuousClock.Instant, filled: Bool)?
        while !shouldStop {
            do {
                if !groupsReady {
                    for stream in streams { try await redis.ensureGroup(stream: stream, group: RedisKeys.recordersGroup) }
                    groupsReady = true
                }
                if clock.now - lastTakeover >= abandonedAfter {
                    try await takeOverAbandoned(streams)
                    lastTakeover = clock.now
                }
                if !readingPending, let lastRead, let pause = linger.pause(afterBatchAt: lastRead.at, filled: lastRead.filled, now: clock.now) {
                    try? await clock.sleep(for: pause)
                    guard !shouldStop else { break }
                }
                let read = try await redis.readGroup(
                    group: RedisKeys.recordersGroup, consumer: consumer, streams: streams,
                    id: readingPending ? "0" : ">", count: readCount, block: readingPending ? nil : Self.block)
                let total = read.reduce(0) { $0 + $1.entries.count }
                if total == 0 {
                    readingPending = false
                    continue
                }
                lastRead = (clock.now, read.contains { $0.entries.count >= readCount })
                try await record(read)
                failures = 0
            } catch {
                if failures == 0 || failures % 20 == 0 {
                    logger.warning("recording events failed; will retry", metadata: [LogKeys.error: "\(error)"])
                }
                readingPending = true
                groupsReady = false
                let delay = Self.backoff.delay(attempt: failures)
                failures += 1
                try? await Task.sleep(for: delay)
            }
        }
    }

    /// Records the events other Recorders left pending for longer than `abandonedAfter`.
    private func takeOverAbandoned(_ streams: [String]) async throws {
        for stream in streams {
            var cursor = "0-0"
            repeat {
                let claimed = try await redis.autoClaim(
                    stream: stream, group: RedisKeys.recordersGroup, consumer: consumer, minIdle: abandonedAfter,
                    cursor: cursor, count: readCount)
                if !claimed.entries.isEmpty {
                    logger.notice("recording events another coordinator left pending", metadata: [
                        "stream": "\(stream)", LogKeys.count: "\(claimed.entries.count)",
                    ])
                    try await record([(stream, claimed.entries)])
                }
                if !claimed.deletedIDs.isEmpty {
                    // Redis 6.2 leaves deleted entries in the pending list (7 drops them itself).
                    _ = try await redis.send(RedisConnection.xack(stream: stream, group: RedisKeys.recordersGroup, ids: claimed.deletedIDs))
                }
                cursor = claimed.nextCursor
            } while cursor != "0-0" && !shouldStop
        }
    }

    /// Records the events of `read`, then acknowledges its entries.
    private func record(_ read: [(stream: String, entries: [StreamEntry])]) async throws {
        var events: [LifecycleEvent] = []
        // An agent's entry holds up to `eventsPerBatchEntry` events (some 200 bytes each): room for a full
        // read of one stream's batch entries without regrowing, and no more than the batch size beyond the
        // entries (many streams of single events then grow it instead).
        let entries = read.reduce(0) { $0 + $1.entries.count }
        events.reserveCapacity(min(entries * Scripts.eventsPerBatchEntry, max(entries, batchSize)))
        for (stream, entries) in read {
            for entry in entries {
                guard let fields = entry.fields else { continue }  // deleted meanwhile: nothing to record
                LifecycleEvent.forEachEvent(inEntry: fields) { result in
                    switch result {
                    case .success(let event): events.append(event)
                    case .failure(let error):
                        logger.error("dropping undecodable lifecycle event", metadata: ["stream": "\(stream)", "entry": "\(entry.id)", LogKeys.error: "\(error)"])
                    }
                }
            }
        }
        if !events.isEmpty {
            do {
                let started = ContinuousClock.now
                let outcome = try await store.record(events)
                if outcome.webhooksQueued > 0 { onWebhooksQueued() }
                if !outcome.workflows.isEmpty { await onWorkflowAdvance(outcome.workflows) }
                PostgresBatchMetrics.record(operation: "record_events", table: "task_events", rows: events.count, since: started)
                Counter(label: MetricsCatalog.eventsRecorded.name).increment(by: events.count)
                throughput?.record(events)
            } catch let error as PostgresError where !error.isUnavailable && !error.isTransient {
                // The data itself was refused. Record event by event and drop what PostgreSQL rejects,
                // so one bad event cannot stall recording for every queue. (A deadlock with a workflow
                // cancel, say, is not the data's fault: the whole batch is read again and retried.)
                try await recordOneByOne(events, after: error)
            }
            FaultInjection.point(.crashAfterRecord)
        }
        try await acknowledge(read)
    }

    private func recordOneByOne(_ events: [LifecycleEvent], after error: PostgresError) async throws {
        logger.warning("a batch of events was refused; recording them one by one", metadata: [LogKeys.error: "\(error)"])
        for event in events {
            do {
                let outcome = try await store.record([event])
                if outcome.webhooksQueued > 0 { onWebhooksQueued() }
                if !outcome.workflows.isEmpty { await onWorkflowAdvance(outcome.workflows) }
            } catch let error as PostgresError where !error.isUnavailable && !error.isTransient {
                logger.error("dropping a lifecycle event PostgreSQL refused", metadata: [
                    LogKeys.taskID: "\(event.taskID)", LogKeys.correlationID: "\(event.correlationID)", LogKeys.error: "\(error)",
                ])
            }
        }
    }

    /// Acknowledges the recorded events and trims them from their streams (`Scripts.acknowledgeEvents`).
    private func acknowledge(_ read: [(stream: String, entries: [StreamEntry])]) async throws {
        let calls = read.filter { !$0.entries.isEmpty }.map { stream, entries in
            ScriptCall(keys: [stream], arguments: [RedisKeys.recordersGroup] + entries.map(\.id))
        }
        _ = try await redis.evaluate(Scripts.acknowledgeEvents, calls)
    }
}
