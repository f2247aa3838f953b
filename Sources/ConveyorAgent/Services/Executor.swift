import ConveyorCore
import ConveyorMetricNames
import ConveyorRedis
import ConveyorObservability
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Runs delivered tasks: each in a child task, at most the agent's concurrency at once (entries read ahead
/// wait in hand, in the order read, for a slot) and at most the type's `max_concurrent_per_agent`, stopped at
/// the type's `timeout`, its outcome handed to the Completer.
///
/// Wakes on work from the Consumer. Graceful shutdown: accepts nothing new, hands back the entries in
/// hand that have not started, and lets running tasks finish; if the group's shutdown deadline passes
/// first, they are cancelled, left unacknowledged and handed back too. A handed-back entry's idle time
/// is set far past any lease (XCLAIM … IDLE … JUSTID, which does not count as a delivery), so another
/// agent's Reclaimer takes it at its next pass instead of waiting out the lease.
final class Executor: Service, Sendable {
    private let handlers: [String: any TaskHandler]
    /// Per-agent limits (`max_concurrent_per_agent`); a type without one has none here.
    private let limiters: [String: RunLimiter]
    /// The agent's concurrency: a delivery starts only when one of its slots is free.
    private let running: RunLimiter
    private let registry: TaskTypeRegistry
    private let completer: Completer
    private let slots: SlotPool
    private let logger: Logger
    private let inbox: AsyncStream<[Delivery]>
    private let inboxContinuation: AsyncStream<[Delivery]>.Continuation
    private let inFlight = Mutex<[String: Int]>([:])
    /// Deliveries held by this agent (running, or waiting for a slot: read ahead, or their type's), by ``Delivery/key``,
    /// with the time their lease was last renewed: what the LeaseKeeper keeps alive.
    private let held = Mutex<[Delivery.Key: HeldDelivery]>([:])
    private let executions = Atomic<Int>(0)
    private let journal: ExecutionJournal?
    private let agentID: String
    private let redis: any RedisClient
    private let gate: FlowGate
    /// Deliveries whose attempt the shutdown deadline cut short: handed back when the Executor stops.
    private let interrupted = Mutex<[Delivery]>([])
    /// Cleared by ``stopAccepting()``: deliveries still waiting for a slot are handed back, not started.
    private let accepting = Atomic<Bool>(true)
    /// Progress reports of the running attempts (sent by the ProgressFlusher and at each attempt's end).
    let progressBook = ProgressBook()

    /// The idle time a handed-back entry gets: longer than any lease.
    static let handBackIdle = Duration.seconds(365 * 24 * 3600)

    init(
        handlers: [String: any TaskHandler], registry: TaskTypeRegistry, completer: Completer, slots: SlotPool,
        agentID: String, journal: ExecutionJournal?, redis: any RedisClient, gate: FlowGate, logger: Logger
    ) {
        self.gate = gate
        self.handlers = handlers
        self.redis = redis
        self.agentID = agentID
        self.journal = journal
        self.registry = registry
        self.limiters = handlers.keys.reduce(into: [:]) { limiters, type in
            if let limit = registry[type]?.maxConcurrentPerAgent { limiters[type] = RunLimiter(limit: limit) }
        }
        self.completer = completer
        self.running = RunLimiter(limit: slots.capacity)
        self.slots = slots
        self.logger = logger
        (inbox, inboxContinuation) = AsyncStream.makeStream(of: [Delivery].self)
    }

    /// Tasks held, running or waiting for a slot, by type.
    var inFlightByType: [String: Int] { inFlight.withLock { $0.filter { $0.value > 0 } } }

    /// Attempts started since the agent began.
    var executionCount: Int { executions.load(ordering: .relaxed) }

    /// Ages every held lease by `elapsed` and returns the deliveries whose lease has gone a third of its
    /// length unrenewed; marks them renewed. Counting on the LeaseKeeper's clock, not reading a clock
    /// here, is what lets a test drive renewals; an entry held for part of a tick counts it whole, so a
    /// renewal may come early, never late.
    func leasesDue(after elapsed: Duration) -> [Delivery] {
        held.withLock { held in
            var due: [Delivery] = []
            for id in held.keys {
                held[id]!.sinceRenewal += elapsed
                let entry = held[id]!
                if entry.sinceRenewal >= registry.lease(of: entry.delivery.envelope.type) / 3 {
                    due.append(entry.delivery)
                    held[id]!.sinceRenewal = .zero
                }
            }
            return due
        }
    }

    /// The deliveries held now (for the CancelWatcher).
    var heldDeliveries: [Delivery] { held.withLock { $0.values.map(\.delivery) } }

    /// Stops held deliveries of cancelled tasks: a running attempt is cancelled (a command gets SIGTERM,
    /// then SIGKILL), one not started yet never starts. `entries` are ``Delivery/key``s.
    func cancel(entries: some Sequence<Delivery.Key>) {
        let signals = held.withLock { held in entries.compactMap { held[$0]?.cancel } }
        for signal in signals { signal.succeed(()) }
    }

    /// Whether this agent already holds the entry (so a reclaim of it would be a duplicate).
    func holds(_ key: Delivery.Key) -> Bool { held.withLock { $0[key] != nil } }

    /// Takes tasks the Consumer or the Reclaimer read (it already holds one slot for each), a read's worth
    /// at a time: one hand-over per read instead of one per task (each a trip through the inbox's
    /// generic AsyncStream machinery).
    ///
    /// An entry this agent already holds is dropped: at start-up the Reclaimer may claim an entry (then
    /// owned by this agent) just before the Consumer re-reads its own pending entries, and both hand it
    /// over. It must run once.
    func submit(_ deliveries: [Delivery]) {
        guard !deliveries.isEmpty else { return }
        var fresh: [Delivery] = []
        fresh.reserveCapacity(deliveries.count)
        held.withLock { held in
            for delivery in deliveries where held[delivery.key] == nil {
                let cancel = Promise<Void>()
                if delivery.cancelled { cancel.succeed(()) }
                held[delivery.key] = HeldDelivery(delivery: delivery, sinceRenewal: .zero, cancel: cancel)
                fresh.append(delivery)
            }
        }
        if fresh.count < deliveries.count { slots.release(deliveries.count - fresh.count) }
        guard !fresh.isEmpty else { return }
        inFlight.withLock { inFlight in
            for delivery in fresh { inFlight[delivery.envelope.type, default: 0] += 1 }
        }
        if case .terminated = inboxContinuation.yield(fresh) {
            for delivery in fresh { finishWithoutRunning(delivery) }
        }
    }

    /// Stops accepting work: the run loop ends once running tasks finish; deliveries in hand that have
    /// not started are handed back.
    func stopAccepting() {
        accepting.store(false, ordering: .relaxed)
        inboxContinuation.finish()
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                // Entries that hold one of the agent's slots (and their type's, if capped) and start
                // together (see `start(_:in:)`).
                var starting: [(delivery: Delivery, limiter: RunLimiter?)] = []
                for await deliveries in inbox {
                    for delivery in deliveries {
                        if delivery.cancelled {
                            // Reported at once, without waiting for a slot: it does not run.
                            group.addTask { await self.execute(delivery) }
                        } else if let limiter = limiters[delivery.envelope.type] {
                            // Both slots free now: it starts with the others of the read.
                            if limiter.tryAcquire() {
                                if running.tryAcquire() {
                                    starting.append((delivery, limiter))
                                    continue
                                }
                                limiter.release()
                            }
                            // A capped type waits for its own slot before taking one of the agent's, so
                            // that other types' entries in hand do not wait behind it.
                            group.addTask {
                                await limiter.acquire()
                                await self.running.acquire()
                                await self.startUnlessStopping(delivery)
                                self.running.release()
                                limiter.release()
                            }
                        } else {
                            // In the order read: an entry read ahead starts when a slot frees.
                            if !running.tryAcquire() {
                                start(starting, in: &group)
                                starting.removeAll(keepingCapacity: true)
                                await running.acquire()
                            }
                            starting.append((delivery, nil))
                        }
                    }
                    start(starting, in: &group)
                    starting.removeAll(keepingCapacity: true)
                }
            }
        } onGracefulShutdown: {
            self.stopAccepting()
        }
        await handBackInterrupted()
    }

    /// Starts deliveries that hold one of the agent's slots each (and their type's, if it is capped), a
    /// child task per delivery. The journal (a testing aid) gets the lines of those about to run in one
    /// write, before any of them starts: a `write(2)` per task was a tenth of an agent's CPU at the
    /// ceiling. Types with a cluster-wide limit keep a line written by their own attempt, whose time the
    /// limit proofs read. A line written here may stand for an attempt that a kill, a cancel or the
    /// shutdown stops in the moment before it starts: the journal may count an execution too many, never
    /// one too few.
    private func start(_ deliveries: [(delivery: Delivery, limiter: RunLimiter?)], in group: inout DiscardingTaskGroup) {
        guard !deliveries.isEmpty else { return }
        var journaled = false
        if let journal, accepting.load(ordering: .relaxed), !Task.isCancelled {
            let runnable = deliveries.lazy.map(\.delivery).filter { self.startsWithoutItsOwnLine($0) }.map(\.envelope)
            journal.recordStarts(of: runnable, agent: agentID, atMillis: WallClock.nowMillis())
            journaled = true
        }
        for (delivery, limiter) in deliveries {
            let ownLine = !journaled || !startsWithoutItsOwnLine(delivery)
            group.addTask {
                await self.startUnlessStopping(delivery, journal: ownLine)
                self.running.release()
                limiter?.release()
            }
        }
    }

    /// Whether a delivery's start is journaled with its batch (``start(_:in:)``) rather than by its attempt.
    private func startsWithoutItsOwnLine(_ delivery: Delivery) -> Bool {
        handlers[delivery.envelope.type] != nil && !gate.limitedTypes.contains(delivery.envelope.type)
    }

    /// Runs a delivery that holds its slots, unless shutdown began while it waited for them: then it is
    /// handed back with the interrupted ones, never started. `journal`: whether its attempt writes its own
    /// journal line (false when its batch's line was written already).
    private func startUnlessStopping(_ delivery: Delivery, journal: Bool = true) async {
        guard accepting.load(ordering: .relaxed) else {
            interrupted.withLock { $0.append(delivery) }
            finishWithoutRunning(delivery)
            return
        }
        await execute(delivery, journal: journal)
    }

    /// Hands the entries of interrupted attempts back to the other agents at once (see the type's doc).
    /// Best effort: if it fails, the entries are taken over when their lease runs out, as after a crash.
    private func handBackInterrupted() async {
        let deliveries = interrupted.withLock { $0 }
        guard !deliveries.isEmpty else { return }
        let byStream = Dictionary(grouping: deliveries, by: \.stream)
        let calls = byStream.keys.sorted().map { stream in
            ScriptCall(keys: [stream], arguments: [RedisKeys.agentsGroup, agentID, String(Self.handBackIdle.milliseconds)] + byStream[stream]!.map(\.entryID))
        }
        do {
            _ = try await redis.evaluate(Scripts.handBack, calls)
            logger.notice("handed interrupted tasks back to other agents", metadata: [LogKeys.count: "\(deliveries.count)"])
        } catch {
            logger.warning("handing interrupted tasks back failed; they are taken over after their lease", metadata: [LogKeys.error: "\(error)"])
        }
    }

    private func finishWithoutRunning(_ delivery: Delivery) {
        held.withLock { _ = $0.removeValue(forKey: delivery.key) }
        inFlight.withLock { $0[delivery.envelope.type, default: 1] -= 1 }
        slots.release()
    }

    private func execute(_ delivery: Delivery, journal writesLine: Bool = true) async {
        defer { finishWithoutRunning(delivery) }
        let envelope = delivery.envelope
        // Built only for a line actually written (most attempts write none).
        let logger = self.logger
        var taskLogger: Logger {
            logger.forTask(id: envelope.id, type: envelope.type, attempt: envelope.attempt, correlationID: envelope.correlationID)
        }
        guard let handler = handlers[envelope.type] else {
            // A type this agent does not serve on this queue: fail it for good rather than loop.
            taskLogger.error("no handler for task type")
            await completer.finished(delivery, .failed(error: "no handler for task type '\(envelope.type)' on agent", retryable: false), startedAtMillis: WallClock.nowMillis())
            return
        }
        let cancel = held.withLock { $0[delivery.key]?.cancel } ?? Promise<Void>()
        if cancel.isSucceeded {
            taskLogger.info("task cancelled before it started")
            await completer.finished(delivery, .cancelled, startedAtMillis: WallClock.nowMillis())
            return
        }
        if delivery.admitOnStart && !cancel.isSucceeded {
            // Held back (parked by the script) or no longer ours: it does not run here.
            guard (try? await gate.admit([delivery], reclaimed: delivery.reclaimed))?.isEmpty == false else { return }
        }
        if cancel.isSucceeded {
            taskLogger.info("task cancelled before it started")
            await completer.finished(delivery, .cancelled, startedAtMillis: WallClock.nowMillis())
            return
        }
        let startedAt = WallClock.nowMillis()
        executions.add(1, ordering: .relaxed)
        // An attempt started in a task the shutdown deadline already cancelled ends at once: not a run.
        if writesLine && !Task.isCancelled { journal?.record(taskID: envelope.id.description, attempt: envelope.attempt, agent: agentID, atMillis: startedAt) }
        // An instant handler's `running` would fold into its outcome, which carries the start time
        // anyway: it is not queued (one Completer item per task instead of two at the ceiling).
        if !handler.returnsWithoutSuspending { await completer.started(delivery, atMillis: startedAt) }
        let timeout = registry[envelope.type]?.timeout ?? TaskTypeDefinition.defaultTimeout
        let outcome = await Self.attempt(
            handler, delivery: delivery, timeout: timeout, cancel: cancel, logger: logger,
            progress: progressBook.sink(for: delivery, startedAtMillis: startedAt))
        // Ends matter only for the limit proofs (how many runs of a limited type overlapped); the load
        // generator's ceiling runs keep one line per task, as before limits existed.
        if let journal, !gate.limitedTypes.isEmpty, gate.limitedTypes.contains(envelope.type) {
            journal.recordEnd(taskID: envelope.id.description, attempt: envelope.attempt, agent: agentID, atMillis: WallClock.nowMillis())
        }
        let ending = progressBook.finish(delivery)
        guard let outcome else {
            taskLogger.info("attempt interrupted by shutdown; the task is handed back")
            interrupted.withLock { $0.append(delivery) }
            return
        }
        if case .timedOut = outcome {
            Counter(label: MetricsCatalog.timeouts.name, dimensions: [("type", envelope.type)]).increment()
        }
        switch outcome {
        case .failed(let error, _, _): taskLogger.warning("attempt failed", metadata: [LogKeys.error: "\(error)"])
        case .timedOut(let after): taskLogger.warning("attempt timed out", metadata: ["timeout": "\(after)"])
        case .cancelled: taskLogger.info("attempt stopped: the task was cancelled")
        case .succeeded:
            if TaskLogSampling.includes(envelope.id) {
                taskLogger.info("attempt succeeded", metadata: ["run_ms": "\(WallClock.nowMillis() - startedAt)"])
            }
        }
        // An attempt that reported keeps its `running` apart from its outcome (an instant handler's is sent
        // now): folded into the outcome, the start would be listed after the reports.
        let reported = ending != nil
        if reported && handler.returnsWithoutSuspending { await completer.started(delivery, atMillis: startedAt) }
        // The attempt's last word about its progress goes out before its outcome, in the same order.
        if let unsent = ending?.unsent { await completer.progress(delivery, unsent.progress, atMillis: unsent.atMillis) }
        // Dated after the attempt's `running` and its reports even within their millisecond, so that the
        // history lists them in the order they happened (a `failed` of the same millisecond sorts first).
        let runningFloor = handler.returnsWithoutSuspending && !reported ? Int64.min : startedAt + 1
        await completer.finished(
            delivery, outcome, startedAtMillis: startedAt, notBeforeMillis: max(runningFloor, ending?.outcomeNotBefore ?? .min),
            reported: reported)
    }

    /// Runs one attempt under its timeout. Nil when the attempt was cancelled by shutdown (not a failure:
    /// the task is left pending for redelivery). `logger` is the agent's: the handler's gets the task's
    /// metadata over it.
    static func attempt(
        _ handler: any TaskHandler, delivery: Delivery, timeout: Duration, cancel: Promise<Void>, logger: Logger,
        progress: ProgressBook.Sink? = nil
    ) async -> AttemptOutcome? {
        let envelope = delivery.envelope
        let params: JSONValue
        do {
            params = try JSONValue.parse(envelope.params)
        } catch {
            return .failed(error: "params are not valid JSON", retryable: false)
        }
        var context = TaskContext(
            id: envelope.id, type: envelope.type, attempt: envelope.attempt, maxAttempts: envelope.maxAttempts,
            correlationID: envelope.correlationID, params: params, paramsJSON: envelope.params, taskMetadataOver: logger, timeout: timeout)
        context.progressSink = progress
        if let dependencies = envelope.dependencies {
            context.dependenciesJSON = dependencies
            if case .object(let members)? = try? JSONValue.parse(dependencies) { context.dependencies = members }
        }
        let result: Result<JSONValue?, any Error>
        if handler.returnsWithoutSuspending {
            do { result = .success(try await handler.handle(context)) } catch { result = .failure(error) }
        } else {
            result = await watched(handler, context: context, timeout: timeout, cancel: cancel)
        }
        switch result {
        case .success(let value):
            return .succeeded(result: value.map(\.serialized))
        case .failure(let error as TaskFailure):
            return .failed(error: error.message, retryable: error.retryable, retryAfter: error.retryAfter)
        case .failure(let error as AttemptTimedOut):
            return .timedOut(after: error.timeout)
        case .failure(is TaskCancelledByClient):
            return .cancelled
        case .failure(let error) where error is CancellationError || Task.isCancelled:
            return Task.isCancelled ? nil : .failed(error: "cancelled", retryable: true)
        case .failure(let error):
            return .failed(error: "\(error)", retryable: true)
        }
    }

    /// Runs the handler beside its timeout and the API's cancel signal; the first of the three to finish
    /// decides the attempt.
    private static func watched(_ handler: any TaskHandler, context: TaskContext, timeout: Duration, cancel: Promise<Void>) async -> Result<JSONValue?, any Error> {
        await withTaskGroup(of: Result<JSONValue?, any Error>?.self) { group in
            group.addTask {
                do { return .success(try await handler.handle(context)) } catch { return .failure(error) }
            }
            group.addTask {
                do {
                    try await Task.sleep(for: timeout)
                    return .failure(AttemptTimedOut(timeout: timeout))
                } catch {
                    return nil  // cancelled because the handler finished first
                }
            }
            group.addTask {
                // Resolved by the CancelWatcher; when the attempt ends first, cancellation ends this wait.
                await withTaskCancellationHandler {
                    _ = try? await cancel.value
                } onCancel: {
                    cancel.fail(CancellationError())
                }
                return cancel.isSucceeded ? .failure(TaskCancelledByClient()) : nil
            }
            var first: Result<JSONValue?, any Error>?
            while first == nil, let next = await group.next() { first = next }
            group.cancelAll()
            return first ?? .failure(CancellationError())
        }
    }
}

struct HeldDelivery: Sendable {
    var delivery: Delivery
    /// Time counted since the lease was last renewed (see ``Executor/leasesDue(after:)``).
    var sinceRenewal: Duration
    /// Fulfilled when the task is cancelled through the API.
    var cancel: Promise<Void>
}

struct TaskCancelledByClient: Error {}

struct AttemptTimedOut: Error, CustomStringConvertible {
    var timeout: Duration
    var description: String { "timed out after \(timeout)" }
}
