import ConveyorCore
import ConveyorObservability
import ConveyorRedis
import Logging
import ServiceLifecycle
import Synchronization

/// Reads tasks from the served queues' ready streams (one per priority, shared by ``ReadPlan``) and
/// hands them to the Executor, never more than there are free slots (the lease clock starts at delivery,
/// not when a handler begins) plus, while a stream has a backlog, the slots its tasks freed during the
/// last read round (``ReadAhead``). Entries of limited types, and of queues with something paused, pass the
/// ``FlowGate`` first; those held back never reach the Executor. A queue paused as a whole is not read.
///
/// Wakes on a free slot. At start it first takes back its own pending entries (left by an earlier run
/// under the same agent id), then reads new ones with XREADGROUP … BLOCK. An entry that cannot be decoded
/// is moved to the queue's dead-letter stream and acknowledged: it never crashes the agent and never
/// loops. Graceful shutdown: the first service to stop; it stops reading within one BLOCK interval.
final class Consumer: Service, Sendable {
    private let redis: any RedisClient
    private let keys: RedisKeys
    private let agentID: String
    private let queues: [String]
    private let executor: Executor
    private let slots: SlotPool
    private let readBlock: Duration
    private let logger: Logger
    private let gate: FlowGate
    private let plan: Mutex<ReadPlan>
    private let readAhead: Mutex<ReadAhead>
    /// Queues paused as a whole, as last seen: not read until a check finds them resumed.
    private let pausedQueues = Mutex<Set<String>>([])
    /// Entries a read took whose hand-over then failed (the inspection's round trip on a connection still
    /// reconnecting, say): delivered to this agent, so pending under its name; dispatched again before the
    /// next read instead of being left for the Reclaimer to find a lease later.
    private let undispatched = Mutex<[(stream: String, entries: [StreamEntry])]>([])
    /// Fulfilled once this agent's own pending entries are back in the Executor (the Reclaimer waits).
    private let ownPendingResumed: Promise<Void>

    static let backoff = Backoff(base: .milliseconds(100), maximum: .seconds(5))
    /// How long the read of the one stream with work waits while other streams are probed.
    static let probingWait = Duration.milliseconds(50)
    /// How often streams that gave nothing are probed while another has work: a probe on every read
    /// would triple the read commands of a steady flow (and cost the agent more than the task at a
    /// thousand tasks a second); new work on an idle stream waits at most this long to be seen.
    static let probeInterval = Duration.milliseconds(25)
    /// When the next read round probes the idle streams.
    private let nextProbe = Mutex(ContinuousClock.now)

    /// - Parameter redis: a connection of its own: XREADGROUP BLOCK holds it while waiting.
    init(
        redis: any RedisClient, keys: RedisKeys, agentID: String, queues: [String], executor: Executor, slots: SlotPool,
        readBlock: Duration, ownPendingResumed: Promise<Void>, gate: FlowGate, logger: Logger
    ) {
        self.gate = gate
        self.plan = Mutex(ReadPlan(streams: queues.flatMap { queue in
            TaskPriority.allCases.reversed().map { ReadPlan.Stream(key: keys.ready(queue, priority: $0), queue: queue, priority: $0) }
        }))
        self.readAhead = Mutex(ReadAhead(limit: slots.capacity))
        self.ownPendingResumed = ownPendingResumed
        self.redis = redis
        self.keys = keys
        self.agentID = agentID
        self.queues = queues
        self.executor = executor
        self.slots = slots
        self.readBlock = readBlock
        self.logger = logger
    }

    func run() async throws {
        // Stopping before the resume (shutdown while Redis is away) must release the waiting Reclaimer;
        // after a success this does nothing.
        defer { ownPendingResumed.fail(CancellationError()) }
        var failures = 0
        var groupsReady = false
        var resumedOwnPending = false
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                if !groupsReady {
                    try await ensureGroups()
                    groupsReady = true
                }
                if !resumedOwnPending {
                    // Only once: after that, every pending entry of ours is already in the Executor.
                    try await resumeOwnPending()
                    resumedOwnPending = true
                    ownPendingResumed.succeed(())
                }
                let held = undispatched.withLock { $0 }
                if !held.isEmpty {
                    // Nothing of them reached the Executor (every step before it can fail, none after).
                    try await dispatch(held)
                    undispatched.withLock { $0 = [] }
                }
                let room = await cancelWhenGracefulShutdown { await self.slots.waitForRoom() }
                guard room > 0, !Task.isShuttingDownGracefully else { continue }
                let releasedBefore = slots.releasedCount
                let backlog = try await readRound(free: room)
                let allowance = readAhead.withLock { readAhead in
                    readAhead.roundEnded(backlog: backlog, freedMeanwhile: slots.releasedCount &- releasedBefore)
                    return readAhead.allowance
                }
                slots.setReadAhead(allowance)
                failures = 0
            } catch {
                if Task.isCancelled || Task.isShuttingDownGracefully { break }
                // The groups may be gone (Redis restarted without its data): create them again.
                groupsReady = false
                if failures == 0 || failures % 20 == 0 {
                    logger.warning("reading tasks failed; retrying", metadata: [LogKeys.error: "\(error)"])
                }
                let delay = Self.backoff.delay(attempt: failures)
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
                failures += 1
            }
        }
        // The Executor stops on its own graceful shutdown, which comes later: a service that returned
        // before its turn would count as failed.
    }

    /// Creates the consumer groups this agent reads and writes through (existing ones are kept).
    private func ensureGroups() async throws {
        for queue in queues {
            for stream in keys.readyStreams(queue) { try await redis.ensureGroup(stream: stream, group: RedisKeys.agentsGroup) }
            try await redis.ensureGroup(stream: keys.events(queue), group: RedisKeys.recordersGroup)
        }
    }

    /// Takes back the entries an earlier run under the same agent id left pending, stream by stream,
    /// walking forward so that an entry already handed over is not read twice.
    private func resumeOwnPending() async throws {
        for queue in queues {
          for stream in keys.readyStreams(queue) {
            var cursor = "0"
            while !Task.isShuttingDownGracefully {
                let free = await cancelWhenGracefulShutdown { await self.slots.waitForRoom() }
                guard free > 0 else { return }
                let read = try await redis.readGroup(
                    group: RedisKeys.agentsGroup, consumer: agentID, streams: [stream], id: cursor, count: free, block: nil)
                guard let last = read.first?.entries.last else { break }
                cursor = last.id
                if read.first!.entries.count > 0 {
                    logger.info("resuming own pending tasks", metadata: [LogKeys.queue: "\(queue)", LogKeys.count: "\(read.first!.entries.count)"])
                }
                try await dispatch(read, reclaimed: true)
            }
          }
        }
    }

    /// One read: the plan's non-blocking reads in one pipeline, each stream with its own count; when
    /// they find nothing, one XREADGROUP … BLOCK over every stream, which returns on the first new entry.
    /// Returns whether a stream has a backlog: its read got all it asked for.
    private func readRound(free: Int) async throws -> Bool {
        let excluded = try await pausedStreams()
        // Non-blocking rounds while some stream is expected to have work (a round that finds nothing
        // marks what it asked idle; a second one asks the rest); then the agent waits on every stream.
        var read: [(stream: String, entries: [StreamEntry])] = []
        // What the read's entries need to start, asked in its own round trip where the pipeline keeps
        // its order (FlowGate.Glance), about the queues read.
        let glancing = redis.runsPipelinesInOrder
        var glance: FlowGate.Glance?
        var rounds = 0
        while read.isEmpty && rounds < 2 && !plan.withLock({ $0.allIdle(excluding: excluded) }) {
            rounds += 1
            let now = ContinuousClock.now
            var probeDue = nextProbe.withLock { $0 }
            let probing = now >= probeDue
            let (asked, waiting, idleLeft) = plan.withLock { plan in
                let asked = plan.counts(free: free, excluded: excluded, probing: probing)
                return (asked, plan.waitsOn(asked), plan.hasIdle(excluding: excluded.union(asked.map(\.stream.key))))
            }
            if asked.isEmpty { break }
            if probing {
                probeDue = now + Self.probeInterval
                nextProbe.withLock { [probeDue] in $0 = probeDue }
            }
            // The one stream with work waits for it (the probes go first in the pipeline and never wait):
            // while other streams are probed, only briefly, so that work arriving there is not held up;
            // between probe rounds, until the next one is due.
            let wait: Duration
            if asked.count > 1 {
                wait = min(readBlock, Self.probingWait)
            } else if idleLeft {
                wait = min(readBlock, max(.milliseconds(1), probeDue - now))
            } else {
                wait = readBlock
            }
            let glanced = glancing ? Self.queues(of: asked.map(\.stream)) : []
            let replies = try await cancelWhenGracefulShutdown {
                try await self.redis.send(asked.sorted { ($0.stream.key == waiting ? 1 : 0) < ($1.stream.key == waiting ? 1 : 0) }.map { stream, count in
                    RedisConnection.xreadgroup(
                        group: RedisKeys.agentsGroup, consumer: self.agentID, streams: [stream.key], count: count,
                        block: stream.key == waiting ? wait : nil)
                } + FlowGate.Glance.commands(glanced, keys: self.keys))
            }
            for reply in replies.prefix(asked.count) { read += try RedisConnection.decodeRead(reply, command: "XREADGROUP") }
            glance = glancing ? FlowGate.Glance(glanced, replies: replies.dropFirst(asked.count)) : nil
            var got: [String: Int] = [:]
            for (stream, entries) in read { got[stream, default: 0] += entries.count }
            plan.withLock { $0.record(asked: asked, got: got) }
        }
        let waitable = plan.withLock { $0.streams }.filter { !excluded.contains($0.key) }
        if waitable.isEmpty {
            // Every served queue is paused: look again after a read's wait.
            try await cancelWhenGracefulShutdown { try await Task.sleep(for: self.readBlock) }
            return false
        }
        if read.isEmpty {
            // Every stream waits: new work on any of them wakes the read. COUNT is per stream; with fewer
            // free slots than streams it is 1, and the read returns only what arrived during the wait (one
            // entry, unless several streams got work in the same instant: held and renewed like the rest).
            let streams = waitable.map(\.key)
            let glanced = glancing ? Self.queues(of: waitable) : []
            let (entries, followers) = try await cancelWhenGracefulShutdown {
                try await self.redis.readGroup(
                    group: RedisKeys.agentsGroup, consumer: self.agentID, streams: streams,
                    count: max(1, free / streams.count), block: self.readBlock,
                    followedBy: FlowGate.Glance.commands(glanced, keys: self.keys))
            }
            read = entries
            glance = followers.map { FlowGate.Glance(glanced, replies: $0) }
            plan.withLock { $0.markActive(read.map(\.stream)) }
        }
        do {
            try await dispatch(read, glance: glance)
        } catch {
            undispatched.withLock { $0 = read }
            throw error
        }
        return plan.withLock { $0.hasBusy(excluding: excluded) }
    }

    /// The queues of these streams, each once, in the order first seen.
    private static func queues(of streams: [ReadPlan.Stream]) -> [String] {
        var seen = Set<String>()
        return streams.map(\.queue).filter { seen.insert($0).inserted }
    }

    /// The streams of queues paused as a whole. Only when some queue was seen paused does this cost a
    /// round trip: it checks whether those queues are paused still.
    private func pausedStreams() async throws -> Set<String> {
        let paused = pausedQueues.withLock { $0 }
        guard !paused.isEmpty else { return [] }
        let order = paused.sorted()
        let replies = try await redis.send(order.map { RedisCommand("HEXISTS", [keys.paused($0), "*"]) })
        var still = Set<String>()
        for (queue, reply) in zip(order, replies) where reply.integer == 1 { still.insert(queue) }
        pausedQueues.withLock { $0 = still.union($0.subtracting(paused)) }
        return Set(still.flatMap { keys.readyStreams($0) })
    }

    /// - Parameters:
    ///   - reclaimed: entries this agent held before a restart (their attempts started once).
    ///   - glance: what the read's own round trip learned (``FlowGate/Glance``); without it, or when it
    ///     cannot tell, the entries are inspected in a round trip of their own.
    private func dispatch(_ read: [(stream: String, entries: [StreamEntry])], reclaimed: Bool = false, glance: FlowGate.Glance? = nil) async throws {
        var gone: [RedisCommand] = []
        var poison: [PoisonEntry] = []
        var deliveries: [Delivery] = []
        for (stream, entries) in read {
            guard let queue = queues.first(where: { keys.readyStreams($0).contains(stream) }) else { continue }
            for entry in entries {
                guard let fields = entry.fieldList else {
                    // Deleted after delivery (already completed elsewhere): nothing to run.
                    gone.append(RedisConnection.xack(stream: stream, group: RedisKeys.agentsGroup, ids: [entry.id]))
                    continue
                }
                do {
                    let envelope = try TaskEnvelope(fields: fields)
                    deliveries.append(Delivery(queue: queue, stream: stream, entryID: entry.id, envelope: envelope))
                } catch {
                    logger.error("dead-lettering an undecodable stream entry", metadata: [LogKeys.queue: "\(queue)", "entry": "\(entry.id)", LogKeys.error: "\(error)"])
                    poison.append(PoisonEntry(queue: queue, stream: stream, entryID: entry.id, fields: fields.byName, reason: "\(error)", envelope: nil))
                }
            }
        }
        if !gone.isEmpty { _ = try await redis.send(gone) }
        // The same atomic script as the Reclaimer's: copied, acknowledged and deleted at once, or not at all.
        _ = try await PoisonEntry.deadLetter(poison, redis: redis, keys: keys, agentID: agentID)
        guard !deliveries.isEmpty else { return }
        // On the reading connection, idle until the next read: on the shared one this round trip of the
        // read path would queue behind the Completer's script calls.
        let inspection: FlowGate.Inspection
        if let glanced = glance?.inspection(of: deliveries) {
            inspection = glanced
        } else {
            inspection = try await FlowGate.inspect(deliveries, redis: redis, keys: keys)
        }
        let wholeQueues = inspection.paused.filter { $0.value.contains("*") }.keys
        if !wholeQueues.isEmpty { pausedQueues.withLock { $0.formUnion(wholeQueues) } }
        try await Self.start(deliveries, inspection: inspection, gate: gate, slots: slots, executor: executor, reclaimed: reclaimed)
    }

    /// Hands taken entries to the Executor: cancelled ones to be dropped, gated ones only if admitted.
    static func start(
        _ deliveries: [Delivery], inspection: FlowGate.Inspection, gate: FlowGate, slots: SlotPool, executor: Executor, reclaimed: Bool = false
    ) async throws {
        // The common case: no limited type and nothing paused; only cancellations to mark.
        if gate.limitedTypes.isEmpty && inspection.paused.isEmpty {
            var marked = deliveries
            for index in marked.indices {
                if !inspection.cancelled.isEmpty { marked[index].cancelled = inspection.cancelled.contains(marked[index].key) }
                marked[index].reclaimed = reclaimed
            }
            slots.take(marked.count)
            executor.submit(marked)
            return
        }
        var ready: [Delivery] = []
        var gated: [Delivery] = []
        for var delivery in deliveries {
            delivery.cancelled = inspection.cancelled.contains(delivery.key)
            delivery.reclaimed = reclaimed
            if !delivery.cancelled && gate.isGated(delivery, inspection: inspection) {
                // A per-agent cap too: admitted when the agent's own slot for the type is free.
                if gate.cappedLimitedTypes.contains(delivery.envelope.type) {
                    delivery.admitOnStart = true
                    ready.append(delivery)
                } else {
                    gated.append(delivery)
                }
            } else {
                ready.append(delivery)
            }
        }
        ready += try await gate.admit(gated, reclaimed: reclaimed)
        slots.take(ready.count)
        executor.submit(ready)
    }
}
