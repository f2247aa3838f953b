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
    let redis: RedisConnection
    let keys: RedisKeys
    let registry: TaskTypeRegistry

    /// Why an entry did not start.
    enum Hold: String, Sendable, CaseIterable {
        case paused, concurrency, rate
    }

    /// What a read learned beside its entries: which of them were cancelled, and what is paused per queue.
    struct Inspection: Sendable {
        var cancelled: Set<String> = []
        /// Keys (``Delivery/key``) of the cancelled ones.
        /// Queue → paused names (`*` or types); queues with nothing paused are absent.
        var paused: [String: Set<String>] = [:]
    }

    /// One round trip for a whole read: SMISMEMBER on each queue's cancelled set and HKEYS of its pauses.
    func inspect(_ deliveries: [Delivery]) async throws -> Inspection {
        try await Self.inspect(deliveries, redis: redis, keys: keys)
    }

    static func inspect(_ deliveries: [Delivery], redis: RedisConnection, keys: RedisKeys) async throws -> Inspection {
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

    /// Whether a delivery must pass the script before it starts.
    func isGated(_ delivery: Delivery, inspection: Inspection) -> Bool {
        registry[delivery.envelope.type]?.isFlowControlled == true || inspection.paused[delivery.queue] != nil
    }

    /// The cluster-wide concurrency limits an attempt of this envelope counts against, with their sizes.
    func concurrencyLimits(of envelope: TaskEnvelope, queue: String) -> [(keys: LimitKeys, limit: Int)] {
        guard let type = registry[envelope.type] else { return [] }
        var limits: [(keys: LimitKeys, limit: Int)] = []
        if let limit = type.maxConcurrent { limits.append((keys.limit(queue, type: type.name), limit)) }
        if let key = envelope.limitKey, let limit = type.perKey?.maxConcurrent {
            limits.append((keys.limit(queue, type: type.name, key: key), limit))
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

    /// Runs the admission script for `deliveries` (all gated), one call per queue in one pipeline, and
    /// returns those that may start. A `reclaimed` entry's attempt already started once: its rate was
    /// charged then, so only its slot is checked (it keeps its own if still held).
    func admit(_ deliveries: [Delivery], reclaimed: Bool = false) async throws -> [Delivery] {
        guard !deliveries.isEmpty else { return [] }
        let byQueue = Dictionary(grouping: deliveries, by: \.queue)
        let queues = byQueue.keys.sorted()
        var calls: [ScriptCall] = []
        for queue in queues {
            var callKeys = [keys.paused(queue), keys.delayed(queue)] + TaskPriority.allCases.map { keys.ready(queue, priority: $0) }
            var index: [String: Int] = [:]
            func slot(_ key: String) -> String {
                if let known = index[key] { return String(known) }
                callKeys.append(key)
                index[key] = callKeys.count
                return String(callKeys.count)
            }
            var arguments = [RedisKeys.agentsGroup]
            for delivery in byQueue[queue]! {
                let envelope = delivery.envelope
                arguments += [
                    String(3 + delivery.envelope.priority.rawValue), delivery.entryID, envelope.id.description, envelope.type,
                    String(registry.lease(of: envelope.type).milliseconds), slot(keys.pausedEntries(queue, type: envelope.type)),
                ]
                let concurrency = concurrencyLimits(of: envelope, queue: queue)
                arguments.append(String(concurrency.count))
                for limit in concurrency { arguments += [slot(limit.keys.running), slot(limit.keys.waiting), String(limit.limit)] }
                let rates = reclaimed ? [] : rateLimits(of: envelope, queue: queue)
                arguments.append(String(rates.count))
                for limit in rates {
                    arguments += [slot(limit.keys.rate), slot(limit.keys.starts), String(limit.rate.intervalMillis), String(limit.rate.burst)]
                }
                let fields = envelope.fields
                arguments.append(String(fields.count * 2))
                for (field, value) in fields { arguments += [field, value] }
            }
            calls.append(ScriptCall(keys: callKeys, arguments: arguments))
        }
        let replies = try await redis.evaluate(Scripts.admit, calls)
        var admitted: [Delivery] = []
        var held: [String: [Hold: Int]] = [:]
        var waitingKeys: [RedisCommand] = []
        for (queue, reply) in zip(queues, replies) {
            if let message = reply.errorMessage { throw RedisError(.commandFailed, message, command: "EVALSHA admit") }
            for (delivery, verdict) in zip(byQueue[queue]!, reply.array ?? []) {
                switch verdict.integer {
                case 0: admitted.append(delivery)
                case 1: held[delivery.envelope.type, default: [:]][.paused, default: 0] += 1
                case 2:
                    held[delivery.envelope.type, default: [:]][.concurrency, default: 0] += 1
                    if let key = delivery.envelope.limitKey, registry[delivery.envelope.type]?.perKey?.maxConcurrent != nil {
                        waitingKeys.append(RedisCommand("SADD", [keys.waitingKeys(queue, type: delivery.envelope.type), key]))
                    }
                default: held[delivery.envelope.type, default: [:]][.rate, default: 0] += 1
                }
            }
        }
        // The reaper's list of limit keys with waiting entries (a key's own releases move them back; the
        // list is for the rare slot freed with nothing of the key left to release it).
        if !waitingKeys.isEmpty { _ = try? await redis.send(waitingKeys) }
        for (type, reasons) in held {
            for (reason, count) in reasons {
                Counter(label: MetricsCatalog.throttled.name, dimensions: [("type", type), ("reason", reason.rawValue)]).increment(by: count)
            }
        }
        return admitted
    }

    /// The release calls for finished attempts, one per queue: frees their slots and moves as many waiting
    /// entries back. An entry with `fill` (a cancelled task that never started: it may have been the one a
    /// freed slot moved back) also moves waiting entries into whatever slots are free.
    func releaseCalls(_ finished: [(queue: String, envelope: TaskEnvelope, fill: Bool)]) -> [ScriptCall] {
        var perQueue: [String: [(keys: LimitKeys, limit: Int, fill: Bool, tasks: [String])]] = [:]
        for (queue, envelope, fill) in finished {
            for limit in concurrencyLimits(of: envelope, queue: queue) {
                var list = perQueue[queue, default: []]
                if let at = list.firstIndex(where: { $0.keys == limit.keys }) {
                    list[at].tasks.append(envelope.id.description)
                    list[at].fill = list[at].fill || fill
                } else {
                    list.append((limit.keys, limit.limit, fill, [envelope.id.description]))
                }
                perQueue[queue] = list
            }
        }
        return perQueue.keys.sorted().map { queue in
            var callKeys = TaskPriority.allCases.map { keys.ready(queue, priority: $0) }
            var arguments: [String] = []
            for limit in perQueue[queue]! {
                callKeys += [limit.keys.running, limit.keys.waiting]
                arguments += [limit.fill ? String(limit.limit) : "0", String(limit.tasks.count)] + limit.tasks
            }
            return ScriptCall(keys: callKeys, arguments: arguments)
        }
    }

    /// The reaper's pass over one queue: frees lapsed slots (a dead agent's, once its lease is over) and
    /// moves waiting entries into every free slot, for each concurrency-limited type and its limit keys.
    func reap(queue: String) async throws {
        let types = registry.types.values.filter { $0.queue == queue }.sorted { $0.name < $1.name }
        var callKeys = TaskPriority.allCases.map { keys.ready(queue, priority: $0) }
        var arguments: [String] = []
        var keyedTypes: [TaskTypeDefinition] = []
        for type in types {
            if let limit = type.maxConcurrent {
                let limitKeys = keys.limit(queue, type: type.name)
                callKeys += [limitKeys.running, limitKeys.waiting]
                arguments += [String(limit), "0"]
            }
            if type.perKey?.maxConcurrent != nil { keyedTypes.append(type) }
        }
        var members: [[String]] = []
        if !keyedTypes.isEmpty {
            let replies = try await redis.send(keyedTypes.map { RedisCommand("SRANDMEMBER", [keys.waitingKeys(queue, type: $0.name), "100"]) })
            members = replies.map { $0.array?.compactMap(\.string) ?? [] }
            for (type, keysOfType) in zip(keyedTypes, members) {
                for key in keysOfType {
                    let limitKeys = keys.limit(queue, type: type.name, key: key)
                    callKeys += [limitKeys.running, limitKeys.waiting]
                    arguments += [String(type.perKey!.maxConcurrent!), "0"]
                }
            }
        }
        guard callKeys.count > 3 else { return }
        _ = try await redis.evaluate(Scripts.releaseSlots, [ScriptCall(keys: callKeys, arguments: arguments)])
        // Keys whose waiting list is empty now leave the reaper's list.
        var checks: [(type: String, key: String)] = []
        for (type, keysOfType) in zip(keyedTypes, members) {
            for key in keysOfType { checks.append((type.name, key)) }
        }
        guard !checks.isEmpty else { return }
        let lengths = try await redis.send(checks.map { RedisCommand("LLEN", [keys.limit(queue, type: $0.type, key: $0.key).waiting]) })
        let empty = zip(checks, lengths).filter { $0.1.integer == 0 }.map(\.0)
        if !empty.isEmpty {
            _ = try await redis.send(empty.map { RedisCommand("SREM", [keys.waitingKeys(queue, type: $0.type), $0.key]) })
        }
    }
}
