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

/// Turns accepted requests into durable, dispatched tasks, a batch at a time (group commit).
///
/// Wakes on the first waiting request. One flush: COPY every waiting task into `tasks` and COMMIT, then
/// XADD them all to their queues' ready streams in one pipeline (a scheduled task is parked in its
/// queue's delayed set instead, with ZADD in the same pipeline, for the Forwarder to release when due),
/// then answer every waiting request. A lone request is flushed at once; under load, a batch is
/// whatever arrived during the previous flush.
///
/// A 201 therefore means committed *and* in Redis, or committed and left to the Reconciler. If the XADD
/// fails after the COMMIT (Redis went away in between), the just-inserted rows without an idempotency key
/// are deleted again and their requests get 503 with a ``SubmissionError`` that says what is true (some
/// entries of a broken pipeline may have reached Redis and may run). A row with an idempotency key is
/// never deleted: from its COMMIT on, a submission of the same key on any coordinator may have been
/// answered with it, and deleting it would lose a task that client was told exists. Such rows, and rows
/// whose delete failed, stay queued and the Reconciler dispatches them after the dispatch grace: durable
/// and dispatched later is what a 201 promises.
///
/// Overload: at most `queueCapacity` tasks wait. A request that does not fit is shed at once
/// (``SubmissionOverload``, a 503 with `Retry-After`) instead of waiting in line, so an accepted
/// request's latency stays bounded at any offered load, and the client knows to come back; the schedules
/// wait instead (``submit(_:whenFull:)``).
///
/// Graceful shutdown: the HTTP server stops first; the Submitter then flushes what is queued, answers
/// those requests and returns.
public final class Submitter: Service, Sendable {
    struct Submission: Sendable {
        var tasks: [NewTask]
        var reply: Promise<[InsertedTask]>
    }

    private let queue: GroupCommitQueue<Submission>
    private let store: TaskStore
    private let redis: any RedisClient
    private let keys: RedisKeys
    private let maxBatchTasks: Int
    private let logger: Logger
    /// Told the due time of each batch's earliest scheduled task (the Forwarder's nudge).
    private let onScheduled: @Sendable (_ dueAtMillis: Int64) -> Void
    /// Streams whose consumer group is known to exist.
    private let preparedStreams = Mutex<Set<String>>([])

    /// What a submission does when `queueCapacity` tasks already wait.
    public enum WhenFull: Sendable {
        /// Throw ``SubmissionOverload`` at once (the HTTP API: the client retries after `Retry-After`).
        case shed
        /// Wait for room (the coordinator's own submitters, such as the schedules).
        case wait
    }

    public init(
        store: TaskStore, redis: any RedisClient, keys: RedisKeys, maxBatchTasks: Int, queueCapacity: Int? = nil, logger: Logger,
        onScheduled: @escaping @Sendable (_ dueAtMillis: Int64) -> Void = { _ in }
    ) {
        self.onScheduled = onScheduled
        self.store = store
        self.redis = redis
        self.keys = keys
        self.maxBatchTasks = maxBatchTasks
        self.queue = GroupCommitQueue(capacity: queueCapacity ?? maxBatchTasks)
        self.logger = logger
    }

    /// Commits and dispatches `tasks` together; returns one result per task, in order.
    public func submit(_ tasks: [NewTask], whenFull: WhenFull = .wait) async throws -> [InsertedTask] {
        let reply = Promise<[InsertedTask]>()
        let submission = Submission(tasks: tasks, reply: reply)
        switch whenFull {
        case .wait:
            try await queue.enqueue(submission, weight: tasks.count)
        case .shed:
            guard try queue.tryEnqueue(submission, weight: tasks.count) else {
                Counter(label: MetricsCatalog.submissionsShed.name).increment()
                throw SubmissionOverload(waitingTasks: queue.pendingWeight)
            }
        }
        return try await reply.value
    }

    /// Whether a request would be shed now: checked before its body is read, so that shedding costs
    /// the overloaded coordinator next to nothing.
    public var isFull: Bool { queue.isFull() }

    /// Tasks of the flush now writing to PostgreSQL (0 between flushes): what a test waits on to know
    /// that a batch has left the queue.
    public var tasksBeingStored: Int { storing.load(ordering: .relaxed) }
    private let storing = Atomic<Int>(0)

    /// One flush at a time: the batch grows with load because requests gather while the one consumer is
    /// busy (``GroupCommitQueue``). Two in flight measured 8% more throughput at the ceiling once, when
    /// that also let one flush answer an idempotency key the other might still withdraw; keyed rows are
    /// never withdrawn now, and two in flight have not been measured again.
    public func run() async throws {
        await queue.consume(maximumWeight: maxBatchTasks) { batch in await flush(batch) }
    }

    private func flush(_ batch: [Submission]) async {
        let tasks = batch.flatMap(\.tasks)
        do {
            let inserted: [InsertedTask]
            do {
                try await prepareStreams(for: tasks)
                let started = ContinuousClock.now
                storing.store(tasks.count, ordering: .relaxed)
                defer { storing.store(0, ordering: .relaxed) }
                inserted = try await store.insert(tasks)
                PostgresBatchMetrics.record(operation: "insert_tasks", table: "tasks", rows: tasks.count, since: started)
            } catch {
                throw SubmissionError.storing(error)
            }
            let fresh = zip(tasks, inserted).filter { $0.1.created }
            if !fresh.isEmpty { FaultInjection.point(.crashAfterCommit) }
            var withdrawn: Set<TaskID> = []
            var dispatchFailure: (any Error)?
            do {
                try await dispatch(fresh.map { ($0.0, $0.1.id) })
            } catch {
                // Redis may have lost its data, groups included: prepare the streams again next time.
                preparedStreams.withLock { $0.removeAll() }
                dispatchFailure = error
                withdrawn = await withdraw(fresh.filter { $0.0.idempotencyKey == nil }.map(\.1.id), after: error)
            }
            FaultInjection.point(.crashAfterDispatch)
            let kept = withdrawn.isEmpty ? fresh : fresh.filter { !withdrawn.contains($0.1.id) }
            for (task, result) in kept where TaskLogSampling.includes(result.id) {
                logger.info("task accepted", metadata: [
                    LogKeys.taskID: "\(result.id)", LogKeys.taskType: "\(task.type)", LogKeys.correlationID: "\(task.correlationID)",
                    LogKeys.queue: "\(task.queue)",
                ])
            }
            for (type, count) in Self.countByType(kept.lazy.map(\.0.type)) {
                Counter(label: MetricsCatalog.tasksSubmitted.name, dimensions: [("type", type)]).increment(by: count)
            }
            var offset = 0
            for submission in batch {
                let end = offset + submission.tasks.count
                let results = inserted[offset..<end]
                offset = end
                if let dispatchFailure, !withdrawn.isEmpty, results.contains(where: { $0.created && withdrawn.contains($0.id) }) {
                    let keptSome = results.contains { $0.created && !withdrawn.contains($0.id) }
                    submission.reply.fail(SubmissionError.dispatching(dispatchFailure, keptTasksWithIdempotencyKeys: keptSome))
                } else {
                    submission.reply.succeed(Array(results))
                }
            }
            // Parked in Redis only if the pipeline went through; kept rows are the Reconciler's.
            if dispatchFailure == nil {
                await markParked(fresh.filter { $0.0.runAtMillis != nil }.map(\.1.id))
            }
        } catch {
            logger.warning("submission batch failed", metadata: [LogKeys.count: "\(tasks.count)", LogKeys.error: "\(error)"])
            for submission in batch { submission.reply.fail(error) }
        }
    }

    /// XADDs every task to its queue's ready stream, or parks a scheduled one in its delayed set, in one
    /// pipeline.
    private func dispatch(_ tasks: [(NewTask, TaskID)]) async throws {
        guard !tasks.isEmpty else { return }
        var earliestDue: Int64?
        var streams = ReadyStreamNames(keys: keys)
        let commands = tasks.map { task, id in
            let envelope = TaskEnvelope(
                id: id, type: task.type, params: task.params, correlationID: task.correlationID,
                attempt: 1, maxAttempts: task.maxAttempts, enqueuedAtMillis: task.createdAtMillis,
                hasCallback: task.callbackURL != nil, priority: task.priority, limitKey: task.limitKey)
            if let due = task.runAtMillis {
                earliestDue = min(earliestDue ?? due, due)
                return Self.park(envelope, dueAtMillis: due, in: keys.delayed(task.queue))
            }
            return RedisConnection.xadd(stream: streams.name(task.queue, priority: task.priority), envelope: envelope)
        }
        let replies = try await redis.send(commands)
        if let failure = replies.first(where: { $0.errorMessage != nil }) {
            // The other XADDs of the pipeline ran: say how many, so the client hears they may run.
            let queued = replies.count { $0.errorMessage == nil }
            throw RedisError(.commandFailed, failure.errorMessage!, command: "XADD", answered: queued)
        }
        if let earliestDue { onScheduled(earliestDue) }
    }

    /// The ZADD that parks a scheduled task's first attempt in its queue's delayed set, as the member
    /// format the Forwarder and the census read: the entry's fields as a JSON array.
    static func park(_ envelope: TaskEnvelope, dueAtMillis: Int64, in delayed: String) -> RedisCommand {
        var member = "["
        for (index, (name, value)) in envelope.scheduledFields.enumerated() {
            if index > 0 { member += "," }
            JSONValue.writeString(name, into: &member)
            member += ","
            JSONValue.writeString(value, into: &member)
        }
        member += "]"
        return RedisCommand("ZADD", [delayed, String(dueAtMillis), member])
    }

    /// Marks parked scheduled tasks as known to be in Redis. An ordinary task's first event does that
    /// within moments; a scheduled one may wait for days, and until then the Reconciler would take a
    /// census of its queue to look for it. Best effort, after the replies: if it fails, that census
    /// finds the task parked and marks it.
    private func markParked(_ ids: [TaskID]) async {
        guard !ids.isEmpty else { return }
        do {
            try await store.markDispatched(ids)
        } catch {
            logger.debug("could not mark parked scheduled tasks dispatched; the Reconciler will", metadata: [LogKeys.error: "\(error)"])
        }
    }

    /// Removes tasks that were committed but could not be dispatched, so the client's 503 is the truth.
    /// Returns the ids removed. Those not removed stay in PostgreSQL (the delete failed, or an agent
    /// already started one that part of the pipeline queued): the Reconciler dispatches them, or they run,
    /// and their submission has succeeded after all.
    private func withdraw(_ ids: [TaskID], after error: any Error) async -> Set<TaskID> {
        guard !ids.isEmpty else { return [] }
        do {
            let withdrawn = try await store.deleteUndispatched(ids)
            logger.warning("dispatch failed; withdrew committed tasks", metadata: [
                LogKeys.count: "\(withdrawn.count)", "kept": "\(ids.count - withdrawn.count)", LogKeys.error: "\(error)",
            ])
            return withdrawn
        } catch {
            logger.error("dispatch failed and the tasks could not be withdrawn; they stay queued and the Reconciler dispatches them",
                         metadata: [LogKeys.count: "\(ids.count)", LogKeys.error: "\(error)"])
            return []
        }
    }

    /// A flush's tasks by type, in the order the types first appear (a batch is mostly one type: no
    /// dictionary of its tasks per flush).
    static func countByType(_ types: some Sequence<String>) -> [(type: String, count: Int)] {
        var counts: [(type: String, count: Int)] = []
        for type in types {
            if counts.last?.type == type {
                counts[counts.count - 1].count += 1
            } else if let index = counts.firstIndex(where: { $0.type == type }) {
                counts[index].count += 1
            } else {
                counts.append((type, 1))
            }
        }
        return counts
    }

    private func prepareStreams(for tasks: [NewTask]) async throws {
        var names = ReadyStreamNames(keys: keys)
        var streams: Set<String> = []
        var previous: String?
        for task in tasks {
            let stream = names.name(task.queue, priority: task.priority)
            if stream != previous { streams.insert(stream) }
            previous = stream
        }
        let missing = preparedStreams.withLock { streams.subtracting($0) }
        for stream in missing {
            try await redis.ensureGroup(stream: stream, group: RedisKeys.agentsGroup)
            preparedStreams.withLock { _ = $0.insert(stream) }
        }
    }
}

/// The name of each task's ready stream, formatted once per run of tasks of the same queue and priority
/// (a batch is mostly one queue): formatting and hashing it for every task was 3 % of the coordinator's
/// CPU at the ceiling.
struct ReadyStreamNames {
    let keys: RedisKeys
    private var last: (queue: String, priority: TaskPriority, name: String)?

    init(keys: RedisKeys) {
        self.keys = keys
    }

    mutating func name(_ queue: String, priority: TaskPriority) -> String {
        if let last, last.queue == queue, last.priority == priority { return last.name }
        let name = keys.ready(queue, priority: priority)
        last = (queue, priority, name)
        return name
    }
}
