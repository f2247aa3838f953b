import ConveyorCore
import ConveyorRedis
import Foundation

/// Which tasks of a queue Redis holds anywhere: dead letters, delayed retries, the ready streams
/// (backlog and in-flight entries alike, every priority), entries parked by flow control (waiting for a
/// slot, or for a paused type to resume) and outcome events not yet recorded.
///
/// The Reconciler compares this with PostgreSQL to find tasks that Redis lost. The keys are read in the
/// order tasks move between them, so that a task moving during the count is still seen: a redrive moves
/// dead → ready and the Forwarder delayed → ready, both read before ready; a completion removes the ready
/// entry and adds its event atomically, and events are read after ready. A task whose event has been
/// recorded meanwhile has a changed row, which the Reconciler checks afterwards. Flow control moves entries
/// both ways between the ready streams and the parked lists and the delayed set (an agent parks, a freed
/// slot or a resume moves back), so those are read both before and after the streams.
///
/// The Reconciler relies on each candidate row having been read from PostgreSQL *before* the census:
/// then a task that moved on meanwhile shows as a changed row when it is read again.
///
/// Costs one pass over the queue's keys (pages of ``pageSize``): run it only when a reconciliation has
/// candidates, on a connection of its own (its large replies would hold up a shared pipeline).
struct RedisCensus: Sendable {
    let redis: any RedisClient
    let keys: RedisKeys
    var pageSize = 1000

    func taskIDs(in queue: String) async throws -> Set<TaskID> {
        var ids = Set<TaskID>()
        // SCAN-family cursors: a member present for the whole scan is returned at least once, which is
        // all a census needs (a task moving meanwhile is caught by the order of the keys, see above).
        try await scanCollection("HSCAN", keys.deadIndex(queue), into: &ids) { reply in
            stride(from: 0, to: reply.count, by: 2).compactMap { reply[$0].string.flatMap { TaskID($0) } }
        }
        try await scanParked(queue, into: &ids)
        for stream in keys.readyStreams(queue) { try await scan(stream: stream, field: "id", into: &ids) }
        try await scanParked(queue, into: &ids)
        // A `running` event proves nothing: an attempt started before Redis lost its data still reports
        // it. Only an outcome (written together with the XACK of the ready entry) means the task moved on.
        try await scanEvents(stream: keys.events(queue), into: &ids)
        return ids
    }

    /// The delayed set and every list of parked entries (limits' waiting lists, paused types' lists).
    private func scanParked(_ queue: String, into ids: inout Set<TaskID>) async throws {
        try await scanCollection("ZSCAN", keys.delayed(queue), into: &ids) { reply in
            stride(from: 0, to: reply.count, by: 2).compactMap { reply[$0].string.flatMap(Self.taskID(inDelayedMember:)) }
        }
        for pattern in [keys.limit(queue, type: "*").waiting, keys.pausedEntries(queue, type: "*")] {
            var cursor = "0"
            repeat {
                let reply = try await checked(RedisCommand("SCAN", [cursor, "MATCH", pattern, "COUNT", String(pageSize)]))
                guard let parts = reply.array, parts.count == 2, let next = parts[0].string else {
                    throw RedisError(.unexpectedReply, "malformed SCAN reply", command: "SCAN")
                }
                for key in (parts[1].array ?? []).compactMap(\.string) { try await scanList(key, into: &ids) }
                cursor = next
            } while cursor != "0"
        }
    }

    /// Pages through a list of parked entries (members in the delayed set's format).
    private func scanList(_ key: String, into ids: inout Set<TaskID>) async throws {
        var start = 0
        while true {
            let reply = try await checked(RedisCommand("LRANGE", [key, String(start), String(start + pageSize - 1)]))
            let members = reply.array ?? []
            ids.formUnion(members.compactMap { $0.string.flatMap(Self.taskID(inDelayedMember:)) })
            guard members.count == pageSize else { return }
            start += pageSize
        }
    }

    /// The ids of a queue's cancelled set, a page of SSCAN at a time.
    func cancelledIDs(in queue: String) async throws -> Set<TaskID> {
        var ids = Set<TaskID>()
        try await scanCollection("SSCAN", keys.cancelled(queue), into: &ids) { reply in reply.compactMap { $0.string.flatMap { TaskID($0) } } }
        return ids
    }

    /// Pages through a hash, sorted set or set with its SCAN command, collecting what `ids` finds in
    /// each page's elements.
    private func scanCollection(
        _ command: String, _ key: String, into ids: inout Set<TaskID>, _ extract: ([RedisReply]) -> [TaskID]
    ) async throws {
        var cursor = "0"
        repeat {
            let reply = try await checked(RedisCommand(command, [key, cursor, "COUNT", String(pageSize)]))
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string else {
                throw RedisError(.unexpectedReply, "malformed \(command) reply", command: command)
            }
            ids.formUnion(extract(parts[1].array ?? []))
            cursor = next
        } while cursor != "0"
    }

    /// Pages through a whole stream with XRANGE, collecting the task id each entry carries in `field`.
    private func scan(stream: String, field: String, into ids: inout Set<TaskID>) async throws {
        try await forEachEntry(of: stream) { fields in
            if let id = fields[field].flatMap({ TaskID($0) }) { ids.insert(id) }
        }
    }

    /// The tasks of the outcomes on an events stream, in any of its entries' forms.
    private func scanEvents(stream: String, into ids: inout Set<TaskID>) async throws {
        try await forEachEntry(of: stream) { fields in
            // An undecodable event counts as nothing here, as an entry without a task does. A `running`
            // event (a progress report too) proves nothing (see taskIDs(in:)).
            for case .success(let event) in LifecycleEvent.events(inEntry: fields) where event.status != .running {
                ids.insert(event.taskID)
            }
        }
    }

    private func forEachEntry(of stream: String, _ body: ([String: String]) -> Void) async throws {
        var start = "-"
        while true {
            let reply = try await checked(RedisCommand("XRANGE", [stream, start, "+", "COUNT", String(pageSize)]))
            let entries = try (reply.array ?? []).map { reply throws(RedisError) in try StreamEntry(reply: reply) }
            for entry in entries {
                if let fields = entry.fields { body(fields) }
            }
            guard entries.count == pageSize, let last = entries.last else { return }
            start = "(" + last.id
        }
    }

    /// An error reply must not read as "nothing there": every task would then look missing.
    private func checked(_ command: RedisCommand) async throws -> RedisReply {
        let reply = try await redis.send(command)
        if let message = reply.errorMessage { throw RedisError(.commandFailed, message, command: command.name) }
        return reply
    }

    /// A delayed member is the next attempt's entry fields as a JSON array `[name, value, …]`.
    static func taskID(inDelayedMember member: String) -> TaskID? {
        guard let fields = try? JSONDecoder().decode([String].self, from: Data(member.utf8)) else { return nil }
        var index = 0
        while index + 1 < fields.count {
            if fields[index] == "id" { return TaskID(fields[index + 1]) }
            index += 2
        }
        return nil
    }
}
