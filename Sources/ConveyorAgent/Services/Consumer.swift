import ConveyorCore
import ConveyorObservability
import ConveyorRedis
import Logging
import ServiceLifecycle
import Synchronization

/// Reads tasks from the served queues' ready streams and hands them to the Executor, never more than
/// there are free slots (the lease clock starts at delivery, not when a handler begins).
///
/// Wakes on a free slot. At start it first takes back its own pending entries (left by an earlier run
/// under the same agent id), then reads new ones with XREADGROUP … BLOCK. An entry that cannot be decoded
/// is moved to the queue's dead-letter stream and acknowledged: it never crashes the agent and never
/// loops. Graceful shutdown: the first service to stop; it stops reading within one BLOCK interval.
final class Consumer: Service, Sendable {
    private let redis: RedisConnection
    private let keys: RedisKeys
    private let agentID: String
    private let queues: [String]
    private let executor: Executor
    private let slots: SlotPool
    private let readBlock: Duration
    private let logger: Logger
    private let rotation = Atomic<Int>(0)
    /// Fulfilled once this agent's own pending entries are back in the Executor (the Reclaimer waits).
    private let ownPendingResumed: Promise<Void>

    static let backoff = Backoff(base: .milliseconds(100), maximum: .seconds(5))

    /// - Parameter redis: a connection of its own: XREADGROUP BLOCK holds it while waiting.
    init(
        redis: RedisConnection, keys: RedisKeys, agentID: String, queues: [String], executor: Executor, slots: SlotPool,
        readBlock: Duration, ownPendingResumed: Promise<Void>, logger: Logger
    ) {
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
                let free = await cancelWhenGracefulShutdown { await self.slots.waitForFree() }
                guard free > 0, !Task.isShuttingDownGracefully else { continue }
                let selection = select(free: free)
                let read = try await cancelWhenGracefulShutdown {
                    try await self.redis.readGroup(
                        group: RedisKeys.agentsGroup, consumer: self.agentID, streams: selection.streams,
                        count: selection.count, block: self.readBlock)
                }
                try await dispatch(read)
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
            try await redis.ensureGroup(stream: keys.ready(queue), group: RedisKeys.agentsGroup)
            try await redis.ensureGroup(stream: keys.events(queue), group: RedisKeys.recordersGroup)
        }
    }

    /// Takes back the entries an earlier run under the same agent id left pending, stream by stream,
    /// walking forward so that an entry already handed over is not read twice.
    private func resumeOwnPending() async throws {
        for queue in queues {
            var cursor = "0"
            while !Task.isShuttingDownGracefully {
                let free = await cancelWhenGracefulShutdown { await self.slots.waitForFree() }
                guard free > 0 else { return }
                let read = try await redis.readGroup(
                    group: RedisKeys.agentsGroup, consumer: agentID, streams: [keys.ready(queue)], id: cursor, count: free, block: nil)
                guard let last = read.first?.entries.last else { break }
                cursor = last.id
                if read.first!.entries.count > 0 {
                    logger.info("resuming own pending tasks", metadata: [LogKeys.queue: "\(queue)", LogKeys.count: "\(read.first!.entries.count)"])
                }
                try await dispatch(read)
            }
        }
    }

    /// Which streams to read and how many entries from each, so that the total can never exceed `free`:
    /// COUNT applies per stream, so with fewer free slots than queues only some queues are read this
    /// round (rotating, so none starves).
    private func select(free: Int) -> (streams: [String], count: Int) {
        let streams = queues.map(keys.ready)
        if free >= streams.count { return (streams, free / streams.count) }
        let start = rotation.add(1, ordering: .relaxed).newValue
        return ((0..<free).map { streams[(start + $0) % streams.count] }, 1)
    }

    private func dispatch(_ read: [(stream: String, entries: [StreamEntry])]) async throws {
        var gone: [RedisCommand] = []
        var poison: [PoisonEntry] = []
        var deliveries: [Delivery] = []
        for (stream, entries) in read {
            guard let queue = queues.first(where: { keys.ready($0) == stream }) else { continue }
            for entry in entries {
                guard let fields = entry.fields else {
                    // Deleted after delivery (already completed elsewhere): nothing to run.
                    gone.append(RedisConnection.xack(stream: stream, group: RedisKeys.agentsGroup, ids: [entry.id]))
                    continue
                }
                do {
                    let envelope = try TaskEnvelope(fields: fields)
                    deliveries.append(Delivery(queue: queue, stream: stream, entryID: entry.id, envelope: envelope))
                } catch {
                    logger.error("dead-lettering an undecodable stream entry", metadata: [LogKeys.queue: "\(queue)", "entry": "\(entry.id)", LogKeys.error: "\(error)"])
                    poison.append(PoisonEntry(queue: queue, entryID: entry.id, fields: fields, reason: "\(error)", envelope: nil))
                }
            }
        }
        if !gone.isEmpty { _ = try await redis.send(gone) }
        // The same atomic script as the Reclaimer's: copied, acknowledged and deleted at once, or not at all.
        _ = try await PoisonEntry.deadLetter(poison, redis: redis, keys: keys, agentID: agentID)
        guard !deliveries.isEmpty else { return }
        let cancelled = try await Self.cancelledEntries(deliveries, redis: redis, keys: keys)
        for var delivery in deliveries {
            delivery.cancelled = cancelled.contains(delivery.entryID)
            slots.take(1)
            executor.submit(delivery)
        }
    }

    /// The entries among `deliveries` whose task was cancelled: one SMISMEMBER per queue for the whole
    /// batch, so checking costs no round trip per task.
    static func cancelledEntries(_ deliveries: [Delivery], redis: RedisConnection, keys: RedisKeys) async throws -> Set<String> {
        let byQueue = Dictionary(grouping: deliveries, by: \.queue)
        let queues = byQueue.keys.sorted()
        let replies = try await redis.send(queues.map { queue in
            RedisCommand("SMISMEMBER", [keys.cancelled(queue)] + byQueue[queue]!.map(\.envelope.id.description))
        })
        var cancelled = Set<String>()
        for (queue, reply) in zip(queues, replies) {
            for (delivery, member) in zip(byQueue[queue]!, reply.array ?? []) where member.integer == 1 {
                cancelled.insert(delivery.entryID)
            }
        }
        return cancelled
    }
}
