import ConveyorCore
import ConveyorFaults
import ConveyorMetricNames
import ConveyorObservability
import ConveyorRedis
import Logging
import Metrics
import ServiceLifecycle

/// Reports attempts to Redis in batches: acknowledges finished tasks and appends their lifecycle events,
/// atomically, with one ``Scripts/completeTasks`` call per queue per batch (all in one pipeline).
///
/// Wakes on the first completion; a batch is what piled up during the previous flush and, at a light
/// load, during the ``Linger`` that follows a batch that left nothing behind (`CONVEYOR_COMPLETER_LINGER`):
/// at most one script call per linger instead of one per task, so Redis, its AOF and the Recorder see a
/// few batches where they saw every task alone. An agent's own slot is freed once the outcome is queued,
/// and an outcome of a type with a cluster-wide limit (whose slot the flush frees) ends the linger, so the
/// linger delays only when an outcome reaches Redis, never the next task. A task that
/// started and finished within one batch gets a single event (its `running` folds into the outcome,
/// which carries the start time). A failed attempt that may be retried goes, in the same script, to the
/// queue's delayed set with the next attempt number, due after the type's backoff with full jitter; the
/// coordinator's Forwarder moves it back to the ready stream when it is due.
///
/// A flush that fails (Redis away) is retried with backoff, never dropped; meanwhile the bounded queue
/// makes executors wait. Graceful shutdown: runs after the Executor has stopped, flushes everything, then
/// returns.
final class Completer: Service, Sendable {
    enum Item: Sendable {
        case started(Delivery, atMillis: Int64)
        case progress(Delivery, TaskProgress, atMillis: Int64)
        /// `reported`: the attempt reported progress, so its start is never folded into the outcome (a
        /// report sent after the outcome's batch would otherwise be listed before the folded start).
        case finished(Delivery, AttemptOutcome, startedAtMillis: Int64, atMillis: Int64, reported: Bool = false)
    }

    private let queue: GroupCommitQueue<Item>
    private let redis: any RedisClient
    private let keys: RedisKeys
    private let registry: TaskTypeRegistry
    private let agentID: String
    private let batchSize: Int
    private let linger: Linger
    /// What the linger is measured on (a test's clock in tests).
    private let clock: any Clock<Duration>
    private let gate: FlowGate
    private let logger: Logger

    static let backoff = Backoff(base: .milliseconds(50), maximum: .seconds(2))

    init(
        redis: any RedisClient, keys: RedisKeys, registry: TaskTypeRegistry, agentID: String, batchSize: Int, linger: Duration = .zero,
        clock: any Clock<Duration> = ContinuousClock(), gate: FlowGate, logger: Logger
    ) {
        self.gate = gate
        self.redis = redis
        self.keys = keys
        self.registry = registry
        self.agentID = agentID
        self.batchSize = batchSize
        self.linger = Linger(duration: linger)
        self.clock = clock
        self.queue = GroupCommitQueue(capacity: batchSize * 4)
        self.logger = logger
    }

    func started(_ delivery: Delivery, atMillis: Int64) async {
        try? await queue.enqueue(.started(delivery, atMillis: atMillis))
    }

    /// A progress report: an event of its own, acknowledging nothing.
    func progress(_ delivery: Delivery, _ progress: TaskProgress, atMillis: Int64) async {
        try? await queue.enqueue(.progress(delivery, progress, atMillis: atMillis))
    }

    /// - Parameter notBeforeMillis: the earliest time the outcome may carry: after the attempt's earlier
    ///   events, when they fall in the same millisecond.
    func finished(_ delivery: Delivery, _ outcome: AttemptOutcome, startedAtMillis: Int64, notBeforeMillis: Int64 = .min, reported: Bool = false) async {
        do {
            let at = max(WallClock.nowMillis(), notBeforeMillis)
            // A limited type's outcome frees a cluster-wide slot in its flush, which another task may
            // be waiting for: it ends a linger.
            try await queue.enqueue(
                .finished(delivery, outcome, startedAtMillis: startedAtMillis, atMillis: at, reported: reported),
                urgent: !gate.limitedTypes.isEmpty && gate.limitedTypes.contains(delivery.envelope.type))
        } catch {
            // Only after shutdown: the entry stays pending and is redelivered, so nothing is lost.
            logger.warning("completion arrived after shutdown; the task will be redelivered", metadata: [LogKeys.taskID: "\(delivery.envelope.id)"])
        }
    }

    func run() async throws {
        await queue.consume(maximumWeight: batchSize, linger: linger, clock: clock) { batch in await flush(batch) }
    }

    /// Retries until Redis takes the batch, unless the task is cancelled (then the unacknowledged tasks
    /// are redelivered later: at-least-once).
    private func flush(_ batch: [Item]) async {
        // Finished attempts of limited types free their slots in the same round trip, just before their
        // acknowledgement, while the script can still tell that the entry is this agent's (a slot left
        // behind by a crash between the two lapses with its lease).
        let calls = releaseCalls(for: batch).map { (Scripts.releaseSlots, $0) } + scriptCalls(for: batch).map { (Scripts.completeTasks, $0) }
        FaultInjection.point(.crashBeforeComplete)
        var failures = 0
        while true {
            do {
                let replies = try await redis.evaluate(calls)
                if let error = replies.compactMap(\.errorMessage).first {
                    throw RedisError(.commandFailed, error, command: "EVALSHA complete_tasks")
                }
                Self.recordMetrics(batch)
                await forgetCancellations(in: batch)
                return
            } catch {
                if failures == 0 || failures % 20 == 0 {
                    logger.warning("acknowledging tasks failed; retrying", metadata: [LogKeys.count: "\(batch.count)", LogKeys.error: "\(error)"])
                }
                if Task.isCancelled { return }
                try? await Task.sleep(for: Self.backoff.delay(attempt: failures))
                failures += 1
            }
        }
    }

    /// Outcomes, run times and end-to-end times of a reported batch, counted per type and outcome so
    /// that a batch costs one counter update per (type, outcome), not one per task.
    /// - Parameter factory: where the metrics go (the process' registry; a test's own).
    static func recordMetrics(_ batch: [Item], factory: any MetricsFactory = MetricsSystem.factory) {
        /// One type's share of the batch. A batch holds one type or a few: a short list searched by
        /// equality costs less per task than hashing the type's name into a dictionary.
        enum Tallied: Int, CaseIterable {
            case succeeded, cancelled, retrying, dead
            var name: String {
                switch self {
                case .succeeded: "succeeded"
                case .cancelled: "cancelled"
                case .retrying: "retrying"
                case .dead: "dead"
                }
            }
        }
        struct TypeTally {
            var type: String
            /// Counts by ``Tallied`` raw value.
            var outcomes = Array(repeating: 0, count: Tallied.allCases.count)
            // Each handle costs a registry lookup under a lock: one per type per batch, not one per task.
            let run: Timer
            var endToEnd: Timer?
        }
        var tallies: [TypeTally] = []
        for case .finished(let delivery, let outcome, let started, let at, _) in batch {
            let envelope = delivery.envelope
            let tallied: Tallied
            switch outcome {
            case .succeeded: tallied = .succeeded
            case .cancelled: tallied = .cancelled
            case .failed, .timedOut:
                tallied = outcome.failure!.retryable && envelope.attempt < envelope.maxAttempts ? .retrying : .dead
            }
            let index: Int
            if let found = tallies.firstIndex(where: { $0.type == envelope.type }) {
                index = found
            } else {
                index = tallies.count
                tallies.append(TypeTally(
                    type: envelope.type, run: Timer(label: MetricsCatalog.taskRun.name, dimensions: [("type", envelope.type)], factory: factory)))
            }
            tallies[index].outcomes[tallied.rawValue] += 1
            tallies[index].run.recordMilliseconds(max(0, at - started))
            if tallied != .retrying {
                // From the submission (retries keep it), or from the redrive for a redriven task.
                if tallies[index].endToEnd == nil {
                    tallies[index].endToEnd = Timer(label: MetricsCatalog.taskEndToEnd.name, dimensions: [("type", envelope.type)], factory: factory)
                }
                tallies[index].endToEnd!.recordMilliseconds(max(0, at - envelope.enqueuedAtMillis))
            }
        }
        for tally in tallies {
            for tallied in Tallied.allCases where tally.outcomes[tallied.rawValue] > 0 {
                let count = tally.outcomes[tallied.rawValue]
                Counter(label: MetricsCatalog.tasksCompleted.name, dimensions: [("type", tally.type), ("outcome", tallied.name)], factory: factory)
                    .increment(by: count)
                if tallied == .retrying {
                    Counter(label: MetricsCatalog.retries.name, dimensions: [("type", tally.type)], factory: factory).increment(by: count)
                }
            }
        }
    }

    /// Cancelled tasks this batch dropped need no longer be remembered in the queue's cancelled set.
    /// Best effort: a leftover member only costs a few bytes, since a cancelled task never runs again.
    private func forgetCancellations(in batch: [Item]) async {
        var commands: [RedisCommand] = []
        for case .finished(let delivery, .cancelled, _, _, _) in batch {
            commands.append(RedisCommand("SREM", [keys.cancelled(delivery.queue), delivery.envelope.id.description]))
        }
        if !commands.isEmpty { _ = try? await redis.send(commands) }
    }

    func releaseCalls(for batch: [Item]) -> [ScriptCall] {
        guard !gate.limitedTypes.isEmpty else { return [] }
        var finished: [(delivery: Delivery, fill: Bool)] = []
        for case .finished(let delivery, let outcome, _, _, _) in batch where gate.limitedTypes.contains(delivery.envelope.type) {
            finished.append((delivery, outcome == .cancelled))
        }
        return finished.isEmpty ? [] : gate.releaseCalls(finished, consumer: agentID)
    }

    func scriptCalls(for batch: [Item]) -> [ScriptCall] {
        // Only a batch with starts in it asks which entries finished in it (an instant handler's attempt,
        // the ceiling's, queues no start): no set of every finished entry otherwise.
        let hasStarts = batch.contains { if case .started = $0 { true } else { false } }
        var finishedEntries = Set<Delivery.Key>()
        // An attempt's last progress report goes before its outcome: such an outcome stays in the general
        // items, behind the report, instead of moving ahead with the plain completions.
        var reported = Set<Delivery.Key>()
        for item in batch {
            switch item {
            case .finished(let delivery, _, _, _, let didReport):
                if hasStarts { finishedEntries.insert(delivery.key) }
                if didReport { reported.insert(delivery.key) }
            case .progress(let delivery, _, _): reported.insert(delivery.key)
            case .started: break
            }
        }
        // One call per ready stream (a queue has one per priority): the script acknowledges in KEYS[1].
        var argumentsByQueue: [String: ScriptArguments] = [:]
        var queueOfStream: [String: String] = [:]
        for item in batch {
            switch item {
            case .started(let delivery, let at):
                // A start folds into an outcome of the same batch (which carries its time), unless the
                // attempt reported progress: its history would then list the report first.
                if finishedEntries.contains(delivery.key) && !reported.contains(delivery.key) { continue }
                let event = LifecycleEvent(
                    taskID: delivery.envelope.id, status: .running, attempt: delivery.envelope.attempt, agent: agentID,
                    atMillis: at, startedAtMillis: at, correlationID: delivery.envelope.correlationID, type: delivery.envelope.type,
                    dispatchedAtMillis: delivery.dispatchedAtMillis)
                append(&argumentsByQueue[delivery.stream, default: ScriptArguments()].items, ack: "", event: event, requeue: nil, deadLetter: nil)
            case .progress(let delivery, let progress, let at):
                let event = LifecycleEvent(
                    taskID: delivery.envelope.id, status: .running, attempt: delivery.envelope.attempt, agent: agentID,
                    atMillis: at, correlationID: delivery.envelope.correlationID, type: delivery.envelope.type, progress: progress)
                append(&argumentsByQueue[delivery.stream, default: ScriptArguments()].items, ack: "", event: event, requeue: nil, deadLetter: nil)
            case .finished(let delivery, let outcome, let started, let at, _):
                let envelope = delivery.envelope
                var event = LifecycleEvent(
                    taskID: envelope.id, status: .succeeded, attempt: envelope.attempt, agent: agentID, atMillis: at,
                    startedAtMillis: started, correlationID: envelope.correlationID, type: envelope.type,
                    dispatchedAtMillis: delivery.dispatchedAtMillis)
                event.hasCallback = envelope.hasCallback
                var requeue: (envelope: TaskEnvelope, delay: Duration)?
                var deadReason: String?
                switch outcome {
                case .succeeded(let result):
                    event.result = result
                case .cancelled:
                    event.status = .cancelled
                    event.error = "cancelled"
                case .failed, .timedOut:
                    let (error, retryable) = outcome.failure!
                    event.error = error
                    if retryable && envelope.attempt < envelope.maxAttempts {
                        event.status = .retrying
                        var next = envelope
                        next.attempt += 1
                        next.rateReservedAt = nil  // the next attempt waits for its own start
                        next.rateSlotAt = nil
                        let backoff = registry[envelope.type]?.backoff
                            ?? Backoff(base: TaskTypeDefinition.defaultBackoffBase, maximum: TaskTypeDefinition.defaultBackoffMax)
                        // A handler's Retry-After is a floor (capped at a day), not a replacement: jitter stays.
                        let delay = max(backoff.delay(attempt: envelope.attempt - 1), min(outcome.retryAfter ?? .zero, .seconds(86_400)))
                        requeue = (next, delay)
                        event.nextAttemptAtMillis = at + delay.milliseconds
                    } else {
                        // Out of attempts, or a permanent failure: a dead letter, redrivable by API and CLI.
                        event.status = .dead
                        deadReason = error
                    }
                }
                let deadLetter = deadReason.map { reason in
                    DeadLetter(taskID: envelope.id, fields: envelope.fields + [
                        ("dead_reason", reason), ("dead_at", String(at)), ("dead_entry", delivery.entryID),
                    ])
                }
                if requeue == nil, deadLetter == nil, !reported.contains(delivery.key) {
                    argumentsByQueue[delivery.stream, default: ScriptArguments()].appendPlain(ack: delivery.entryID, event: event)
                } else {
                    append(&argumentsByQueue[delivery.stream, default: ScriptArguments()].items, ack: delivery.entryID, event: event, requeue: requeue, deadLetter: deadLetter)
                }
            }
        }
        for item in batch {
            switch item {
            case .started(let delivery, _), .progress(let delivery, _, _), .finished(let delivery, _, _, _, _):
                if queueOfStream[delivery.stream] == nil { queueOfStream[delivery.stream] = delivery.queue }
            }
            if queueOfStream.count == argumentsByQueue.count { break }
        }
        return argumentsByQueue.keys.sorted().map { stream in
            let queue = queueOfStream[stream]!
            return ScriptCall(
                keys: [stream, keys.events(queue), keys.delayed(queue), keys.dead(queue), keys.deadIndex(queue)],
                arguments: argumentsByQueue[stream]!.arguments)
        }
    }

    /// One ``Scripts/completeTasks`` call's ARGV, built in two parts: the plain completions (entry id and
    /// framed event), then the general items (see ``append(_:ack:event:requeue:deadLetter:)``).
    struct ScriptArguments {
        /// Two strings per plain completion.
        var plain: [String] = []
        var items: [String] = []

        mutating func appendPlain(ack: String, event: LifecycleEvent) {
            plain.append(ack)
            plain.append(event.framedCompact)
        }

        var arguments: [String] {
            var arguments = [RedisKeys.agentsGroup, String(plain.count / 2)]
            arguments.reserveCapacity(2 + plain.count + items.count)
            arguments += plain
            arguments += items
            return arguments
        }
    }

    struct DeadLetter {
        var taskID: TaskID
        var fields: [(String, String)]
    }

    /// One item of the script's ARGV: ack id, 1, the framed event, m, [delay ms, m-1 entry strings],
    /// d, [task id, d-1 dead-letter strings].
    private func append(
        _ arguments: inout [String], ack: String, event: LifecycleEvent,
        requeue: (envelope: TaskEnvelope, delay: Duration)?, deadLetter: DeadLetter?
    ) {
        arguments.append(ack)
        // n = 1: the event framed for the script's batch entries (see `LifecycleEvent.batchField`).
        arguments.append("1")
        arguments.append(event.framedCompact)
        if let requeue {
            let requeueFields = requeue.envelope.fields
            arguments.append(String(requeueFields.count * 2 + 1))
            arguments.append(String(requeue.delay.milliseconds))
            for (field, value) in requeueFields {
                arguments.append(field)
                arguments.append(value)
            }
        } else {
            arguments.append("0")
        }
        if let deadLetter {
            arguments.append(String(deadLetter.fields.count * 2 + 1))
            arguments.append(deadLetter.taskID.description)
            for (field, value) in deadLetter.fields {
                arguments.append(field)
                arguments.append(value)
            }
        } else {
            arguments.append("0")
        }
    }
}
