import ConveyorCore
import ConveyorPostgres
import ConveyorRedis

/// Lists and redrives dead-lettered tasks. The dead letters live in each queue's dead stream (the
/// record of why a task died); PostgreSQL holds their status. A redrive first moves the row back to
/// `queued`, then atomically swaps the dead letter for a new ready entry. If Redis fails in between, the
/// row is moved back to `dead`, so the two never disagree for long.
public struct DeadLetterQueue: Sendable {
    let redis: any RedisClient
    let store: TaskStore
    let keys: RedisKeys
    let registry: TaskTypeRegistry
    /// Dead tasks that finished longer ago than this are not redriven: retention is about to drop them
    /// (see ``GenerationStore/redriveMargin``).
    let redrivableFor: Duration
    /// Carries on the workflow of a node whose redrive had to be undone.
    let workflows: WorkflowAdvancer?

    /// One dead letter as the API shows it.
    public struct Letter: Sendable, Hashable {
        public var id: TaskID?
        public var type: String?
        public var queue: String
        public var attempt: Int?
        public var error: String
        public var deadAtMillis: Int64?
        public var correlationID: String?
        /// Where the next page starts: `<queue>/<entry id>`.
        public var cursor: String
    }

    /// Up to `limit` dead letters after `cursor`, optionally of one type, in queue then time order.
    public func list(type: String?, limit: Int, after cursor: String?) async throws -> (letters: [Letter], next: String?) {
        let queues = registry.queues
        var startQueue = queues.first
        var startID = "-"
        if let cursor, let slash = cursor.firstIndex(of: "/") {
            startQueue = String(cursor[..<slash])
            startID = "(" + cursor[cursor.index(after: slash)...]
        }
        var letters: [Letter] = []
        guard let firstQueue = startQueue, let firstIndex = queues.firstIndex(of: firstQueue) else { return ([], nil) }
        for queue in queues[firstIndex...] {
            var from = queue == firstQueue ? startID : "-"
            while letters.count < limit {
                let reply = try await redis.send(RedisCommand("XRANGE", [keys.dead(queue), from, "+", "COUNT", String(max(limit * 2, 100))]))
                var entries: [StreamEntry] = []
                for element in reply.array ?? [] { entries.append(try StreamEntry(reply: element)) }
                guard !entries.isEmpty else { break }
                for entry in entries {
                    from = "(" + entry.id
                    let fields = entry.fields ?? [:]
                    if let type, fields["type"] != type { continue }
                    letters.append(Letter(
                        id: fields["id"].flatMap { TaskID($0) }, type: fields["type"], queue: queue,
                        attempt: fields["attempt"].flatMap { Int($0) }, error: fields["dead_reason"] ?? "",
                        deadAtMillis: fields["dead_at"].flatMap { Int64($0) }, correlationID: fields["cid"],
                        cursor: "\(queue)/\(entry.id)"))
                    if letters.count == limit { return (letters, letters.last?.cursor) }
                }
            }
        }
        return (letters, nil)
    }

    public enum RedriveError: Error, Sendable {
        case notFound
        case notDead(TaskStatus)
        /// Dead, but too close to the end of its retention.
        case expiring
    }

    /// Redrives the given tasks; returns those that were dead (or failed, with `includingFailed`) and
    /// are now queued again.
    @discardableResult
    public func redrive(_ ids: [TaskID], includingFailed: Bool = false) async throws -> [RedrivenTask] {
        let registry = self.registry
        let tasks = try await store.redrive(ids, finishedWithin: redrivableFor, includingFailed: includingFailed) { type in
            registry[type]?.maxAttempts ?? TaskTypeDefinition.defaultMaxAttempts
        }
        guard !tasks.isEmpty else { return [] }
        let now = WallClock.nowMillis()
        let calls = tasks.map { task in
            let envelope = TaskEnvelope(
                id: task.id, type: task.type, params: task.params, correlationID: task.correlationID,
                attempt: task.attempts + 1, maxAttempts: task.maxAttempts, enqueuedAtMillis: now, hasCallback: task.hasCallback,
                priority: task.priority, limitKey: task.limitKey, dependencies: task.dependencies)
            return ScriptCall(
                keys: [keys.dead(task.queue), keys.deadIndex(task.queue), keys.ready(task.queue, priority: task.priority)],
                arguments: [task.id.description] + envelope.fields.flatMap { [$0.0, $0.1] })
        }
        do {
            for stream in Set(tasks.map { keys.ready($0.queue, priority: $0.priority) }) {
                try await redis.ensureGroup(stream: stream, group: RedisKeys.agentsGroup)
            }
            let replies = try await redis.evaluate(Scripts.redrive, calls)
            if let message = replies.compactMap(\.errorMessage).first {
                throw RedisError(.commandFailed, message, command: "EVALSHA redrive")
            }
        } catch {
            if let advance = try? await store.revertRedrive(tasks) { await workflows?.carryOut(advance) }
            throw error
        }
        return tasks
    }

    /// Redrives one task: `notFound` or `notDead` when it cannot be.
    public func redrive(_ id: TaskID) async throws -> RedrivenTask {
        if let task = try await redrive([id]).first { return task }
        guard let status = try await store.status(of: id) else { throw RedriveError.notFound }
        if status == .dead { throw RedriveError.expiring }
        throw RedriveError.notDead(status)
    }

    /// Redrives every dead task (of one type, when given); returns how many. Pages through PostgreSQL,
    /// not the dead streams: those keep only the newest ``CoordinatorConfiguration/deadLetterLimit``.
    public func redriveAll(type: String?) async throws -> Int {
        var total = 0
        var after: TaskID?
        repeat {
            let page = try await store.deadTasks(after: after, type: type, limit: 500)
            total += try await redrive(page.ids).count
            after = page.lastID
        } while after != nil
        return total
    }
}
