import ConveyorCore
import ConveyorMetricNames
import ConveyorRedis
import Metrics

/// Asks Redis whether taken entries may start: pauses, cluster-wide concurrency slots and rate limits
/// (``Scripts/admit``), one script call per queue per read. Entries held back are parked by the script
/// itself; only the others reach the Executor.
///
/// Entries of types without limits, in queues with nothing paused, skip the script: an agent learns
/// what is paused in the same round trip that checks for cancellations, so unlimited work pays nothing.
struct FlowGate: Sendable {
    let redis: any RedisClient
    let keys: RedisKeys
    let registry: TaskTypeRegistry
    /// Types with a cluster-wide limit, and those of them with a per-agent cap too: looked up per task,
    /// so sets of names rather than the registry's definitions (each lookup would copy one).
    let limitedTypes: Set<String>
    let cappedLimitedTypes: Set<String>

    init(redis: any RedisClient, keys: RedisKeys, registry: TaskTypeRegistry) {
        self.redis = redis
        self.keys = keys
        self.registry = registry
        let limited = registry.types.values.filter(\.isFlowControlled)
        self.limitedTypes = Set(limited.map(\.name))
        self.cappedLimitedTypes = Set(limited.filter { $0.maxConcurrentPerAgent != nil }.map(\.name))
    }

    /// Why an entry did not start.
    enum Hold: String, Sendable, CaseIterable {
        case paused, concurrency, rate
    }

    /// What a read learned beside its entries: which of them were cancelled, and what is paused per queue.
    struct Inspection: Sendable {
        var cancelled: Set<Delivery.Key> = []
        /// Keys (``Delivery/key``) of the cancelled ones.
        /// Queue → paused names (`*` or types); queues with nothing paused are absent.
        var paused: [String: Set<String>] = [:]
    }

    /// One round trip for a whole read: SMISMEMBER on each queue's cancelled set and HKEYS of its pauses.
    func inspect(_ deliveries: [Delivery]) async throws -> Inspection {
        try await Self.inspect(deliveries, redis: redis, keys: keys)
    }

    static func inspect(_ deliveries: [Delivery], redis: any RedisClient, keys: RedisKeys) async throws -> Inspection {
        let byQueue = Dictionary(grouping: deliveries, by: \.queue)
        let queues = byQueue.keys.sorted()
        var commands: [RedisCommand] = []
        for queue in queues {
            commands.append(RedisCommand("SMISMEMBER", [keys.cancelled(queue)] + byQueue[queue]!.map(\.envelope.id.description)))
            commands.append(RedisCommand("HKEYS", [keys.paused(queue)]))
        }
        let replies = try await redis.send(commands)
        var inspection = Inspection()
        for (index, queue) in queues.enumerated() {
            for (delivery, member) in zip(byQueue[queue]!, replies[2 * index].array ?? []) where member.integer == 1 {
                inspection.cancelled.insert(delivery.key)
            }
            let paused = Set((replies[2 * index + 1].array ?? []).compactMap(\.string))
            if !paused.isEmpty { inspection.paused[queue] = paused }
        }
        return inspection
    }

    /// What a read learns about its queues in its own round trip, without the entries' ids: which queues
    /// have tasks marked cancelled (SCARD of the cancelled set) and what is paused (HKEYS), asked right
    /// after the read. With no cancellation marked in any delivery's queue (the usual case: a mark lives
    /// from the cancel until an agent drops the task) that is the whole inspection, and the entries start
    /// without a round trip of their own; otherwise ``inspect(_:)`` asks about each entry, as before.
    /// A cancel that lands after the glance is the CancelWatcher's, as one after ``inspect(_:)`` is.
    struct Glance: Sendable {
        /// The queues asked about.
        var queues: Set<String> = []
        /// Queues whose cancelled set was not seen empty (an unexpected reply counts as not empty).
        var withCancellations: Set<String> = []
        var paused: [String: Set<String>] = [:]

        /// SCARD and HKEYS per queue, in `queues` order, for the read's pipeline.
        static func commands(_ queues: [String], keys: RedisKeys) -> [RedisCommand] {
            queues.flatMap { [RedisCommand("SCARD", [keys.cancelled($0)]), RedisCommand("HKEYS", [keys.paused($0)])] }
        }

        /// Reads the replies to ``commands(_:keys:)``.
        init(_ queues: [String], replies: ArraySlice<RedisReply>) {
            self.queues = Set(queues)
            var reply = replies.makeIterator()
            for queue in queues {
                let cancelled = reply.next(), paused = reply.next()
                if cancelled?.integer != 0 { withCancellations.insert(queue) }
                guard let names = paused?.array else {
                    withCancellations.insert(queue)
                    continue
                }
                let set = Set(names.compactMap(\.string))
                if !set.isEmpty { self.paused[queue] = set }
            }
        }

        /// The inspection of these deliveries, or nil when one of their queues has a cancellation marked
        /// (or was not glanced at): then only ``inspect(_:)`` can tell which.
        func inspection(of deliveries: [Delivery]) -> Inspection? {
            guard !deliveries.contains(where: { withCancellations.contains($0.queue) || !queues.contains($0.queue) }) else { return nil }
            // Only the deliveries' queues, as ``inspect(_:)`` reports them.
            let read = Set(deliveries.map(\.queue))
            return Inspection(cancelled: [], paused: paused.filter { read.contains($0.key) })
        }
    }

    /// Whether a delivery must pass the script before it starts.
    func isGated(_ delivery: Delivery, inspection: Inspection) -> Bool {
        limitedTypes.contains(delivery.envelope.type) || inspection.paused[delivery.queue] != nil
    }

    /// One cluster-wide concurrency limit an attempt counts against.
    struct ConcurrencyLimit: Sendable {
        var keys: LimitKeys
        var limit: Int
        /// For a per-key limit: the type's list of limit keys with waiting entries, and this key.
        var waitingKeys: (set: String, key: String)?
    }

    /// The cluster-wide concurrency limits an attempt of this envelope counts against.
    func concurrencyLimits(of envelope: TaskEnvelope, queue: String) -> [ConcurrencyLimit] {
        guard let type = registry[envelope.type] else { return [] }
        var limits: [ConcurrencyLimit] = []
        if let limit = type.maxConcurrent { limits.append(ConcurrencyLimit(keys: keys.limit(queue, type: type.name), limit: limit)) }
        if let key = envelope.limitKey, let limit = type.perKey?.maxConcurrent {
            limits.append(ConcurrencyLimit(
                keys: keys.limit(queue, type: type.name, key: key), limit: limit, waitingKeys: (keys.waitingKeys(queue, type: type.name), key)))
        }
        return limits
    }

    func rateLimits(of envelope: TaskEnvelope, queue: String) -> [(keys: LimitKeys, rate: RateLimit)] {
        guard let type = registry[envelope.type] else { return [] }
        var limits: [(keys: LimitKeys, rate: RateLimit)] = []
        if let rate = type.rateLimit { limits.append((keys.limit(queue, type: type.name), rate)) }
        if let key = envelope.limitKey, let rate = type.perKey?.rateLimit {
            limits.append((keys.limit(queue, type: type.name, key: key), rate))
        }
        return limits
    }

    /// A script call's KEYS, each named once, and the 1-based index a key has in them.
    private struct KeyList {
        var keys: [String]
        private var index: [String: Int] = [:]

        init(_ keys: [String]) {
            self.keys = keys
            for (offset, key) in keys.enumerated() where index[key] == nil { index[key] = offset + 1 }
        }

        mutating func slot(_ key: String) -> String {
            if let known = index[key] { return String(known) }
            keys.append(key)
            index[key] = keys.count
            return String(keys.count)
        }
    }

    /// Runs the admission script for `deliveries` (all gated), one call per queue in one pipeline, and
    /// returns those that may start. A `reclaimed` entry's attempt already started once (taken over, or
    /// this agent's own from before a restart): its rate was charged then, so only its slot is checked (it
    /// keeps its own if still held). A queue whose call fails leaves its entries pending (taken over after
    /// their lease); the others still start.
    func admit(_ deliveries: [Delivery], reclaimed: Bool = false) async throws -> [Delivery] {
        guard !deliveries.isEmpty else { return [] }
        let byQueue = Dictionary(grouping: deliveries, by: \.queue)
        let queues = byQueue.keys.sorted()
        var calls: [ScriptCall] = []
        for queue in queues {
            var list = KeyList([keys.paused(queue), keys.delayed(queue)] + TaskPriority.allCases.map { keys.ready(queue, priority: $0) })
            var arguments = [RedisKeys.agentsGroup]
            for delivery in byQueue[queue]! {
                let envelope = delivery.envelope
                arguments += [
                    list.slot(delivery.stream), delivery.entryID, envelope.id.description, envelope.type,
                    String(registry.lease(of: envelope.type).milliseconds), list.slot(keys.pausedEntries(queue, type: envelope.type)),
                ]
                let concurrency = concurrencyLimits(of: envelope, queue: queue)
                arguments.append(String(concurrency.count))
                for limit in concurrency {
                    arguments += [list.slot(limit.keys.running), list.slot(limit.keys.waiting), String(limit.limit)]
                    if let waiting = limit.waitingKeys { arguments += [list.slot(waiting.set), waiting.key] } else { arguments += ["0", ""] }
                }
                let rates = reclaimed ? [] : rateLimits(of: envelope, queue: queue)
                arguments.append(String(rates.count))
                for limit in rates {
                    arguments += [list.slot(limit.keys.rate), list.slot(limit.keys.starts), String(limit.rate.intervalMillis), String(limit.rate.burst)]
                }
                let fields = envelope.fields
                arguments.append(String(fields.count * 2))
                for (field, value) in fields { arguments += [field, value] }
            }
            calls.append(ScriptCall(keys: list.keys, arguments: arguments))
        }
        let replies = try await redis.evaluate(Scripts.admit, calls)
        var admitted: [Delivery] = []
        var held: [String: [Hold: Int]] = [:]
        var failure: String?
        for (queue, reply) in zip(queues, replies) {
            if let message = reply.errorMessage {
                failure = failure ?? message
                continue
            }
            for (delivery, verdict) in zip(byQueue[queue]!, reply.array ?? []) {
                switch verdict.integer {
                case 0: admitted.append(delivery)
                case 1: held[delivery.envelope.type, default: [:]][.paused, default: 0] += 1
                case 2: held[delivery.envelope.type, default: [:]][.concurrency, default: 0] += 1
                case 3: held[delivery.envelope.type, default: [:]][.rate, default: 0] += 1
                default: break  // no longer this agent's entry: another agent took it over
                }
            }
        }
        for (type, reasons) in held {
            for (reason, count) in reasons {
                Counter(label: MetricsCatalog.throttled.name, dimensions: [("type", type), ("reason", reason.rawValue)]).increment(by: count)
            }
        }
        if let failure, admitted.isEmpty { throw RedisError(.commandFailed, failure, command: "EVALSHA admit") }
        return admitted
    }

    /// The release calls for finished attempts, one per queue: frees their slots (only those whose entry
    /// is still pending for `consumer`) and moves as many waiting entries back. An entry with `fill` (a
    /// cancelled task that never started: it may have been the one a freed slot moved back) also moves
    /// waiting entries into whatever slots are free.
    func releaseCalls(_ finished: [(delivery: Delivery, fill: Bool)], consumer: String) -> [ScriptCall] {
        struct Release {
            var limit: ConcurrencyLimit
            var fill: Bool
            var items: [Delivery]
        }
        var perQueue: [String: [Release]] = [:]
        for (delivery, fill) in finished {
            for limit in concurrencyLimits(of: delivery.envelope, queue: delivery.queue) {
                var list = perQueue[delivery.queue, default: []]
                if let at = list.firstIndex(where: { $0.limit.keys == limit.keys }) {
                    list[at].items.append(delivery)
                    list[at].fill = list[at].fill || fill
                } else {
                    list.append(Release(limit: limit, fill: fill, items: [delivery]))
                }
                perQueue[delivery.queue] = list
            }
        }
        return perQueue.keys.sorted().map { queue in
            var list = KeyList(TaskPriority.allCases.map { keys.ready(queue, priority: $0) })
            let releases = perQueue[queue]!
            // Each limit's pair of keys first, in order; the sets after them.
            for release in releases {
                list.keys += [release.limit.keys.running, release.limit.keys.waiting]
            }
            var arguments = [RedisKeys.agentsGroup, consumer]
            for release in releases {
                arguments.append(release.fill ? String(release.limit.limit) : "0")
                if let waiting = release.limit.waitingKeys { arguments += [list.slot(waiting.set), waiting.key] } else { arguments += ["0", ""] }
                arguments.append(String(release.items.count))
                for delivery in release.items {
                    arguments += [delivery.envelope.id.description, list.slot(delivery.stream), delivery.entryID]
                }
            }
            return ScriptCall(keys: list.keys, arguments: arguments)
        }
    }

    /// The reaper's pass over one queue: frees lapsed slots (a dead agent's, once its lease is over) and
    /// moves waiting entries into every free slot, for each concurrency-limited type and the limit keys
    /// with waiting entries (up to 100 a pass, picked at random).
    func reap(queue: String, consumer: String) async throws {
        let types = registry.types.values.filter { $0.queue == queue }.sorted { $0.name < $1.name }
        var limits: [ConcurrencyLimit] = []
        var keyed: [TaskTypeDefinition] = []
        for type in types {
            if let limit = type.maxConcurrent { limits.append(ConcurrencyLimit(keys: keys.limit(queue, type: type.name), limit: limit)) }
            if type.perKey?.maxConcurrent != nil { keyed.append(type) }
        }
        if !keyed.isEmpty {
            let replies = try await redis.send(keyed.map { RedisCommand("SRANDMEMBER", [keys.waitingKeys(queue, type: $0.name), "100"]) })
            for (type, reply) in zip(keyed, replies) {
                for key in reply.array?.compactMap(\.string) ?? [] {
                    limits.append(ConcurrencyLimit(
                        keys: keys.limit(queue, type: type.name, key: key), limit: type.perKey!.maxConcurrent!,
                        waitingKeys: (keys.waitingKeys(queue, type: type.name), key)))
                }
            }
        }
        guard !limits.isEmpty else { return }
        var list = KeyList(TaskPriority.allCases.map { keys.ready(queue, priority: $0) })
        for limit in limits { list.keys += [limit.keys.running, limit.keys.waiting] }
        var arguments = [RedisKeys.agentsGroup, consumer]
        for limit in limits {
            arguments.append(String(limit.limit))
            if let waiting = limit.waitingKeys { arguments += [list.slot(waiting.set), waiting.key] } else { arguments += ["0", ""] }
            arguments.append("0")
        }
        let reply = try await redis.evaluate(Scripts.releaseSlots, [ScriptCall(keys: list.keys, arguments: arguments)])[0]
        if let message = reply.errorMessage { throw RedisError(.commandFailed, message, command: "EVALSHA release_slots") }
    }
}
