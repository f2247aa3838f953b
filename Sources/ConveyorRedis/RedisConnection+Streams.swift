import ConveyorCore

/// Stream commands, built and decoded in one place.
extension RedisClient {
    public static func xadd(stream: String, fields: [(String, String)]) -> RedisCommand {
        var command = RedisCommand("XADD")
        command.append(stream)
        command.append("*")
        for (field, value) in fields {
            command.append(field)
            command.append(value)
        }
        return command
    }

    /// The XADD of a task's entry, its fields written straight from the envelope (see
    /// ``TaskEnvelope/forEachField(_:)``): every submitted task's path.
    public static func xadd(stream: String, envelope: TaskEnvelope) -> RedisCommand {
        var command = RedisCommand(
            "XADD", reservingBytes: 120 + stream.utf8.count + envelope.params.utf8.count + envelope.correlationID.utf8.count
                + envelope.type.utf8.count + (envelope.dependencies?.utf8.count ?? 0) + (envelope.limitKey?.utf8.count ?? 0),
            arguments: 29)
        command.append(stream)
        command.append("*" as StaticString)
        envelope.forEachField { name, value in
            command.append(name)
            switch value {
            case .text(let text): command.append(text)
            case .integer(let number): command.append(decimal: number)
            }
        }
        return command
    }

    public static func xack(stream: String, group: String, ids: some Sequence<String>) -> RedisCommand {
        var command = RedisCommand("XACK", [stream, group])
        for id in ids { command.append(id) }
        return command
    }

    public static func xdel(stream: String, ids: some Sequence<String>) -> RedisCommand {
        var command = RedisCommand("XDEL", [stream])
        for id in ids { command.append(id) }
        return command
    }

    /// Creates the consumer group (and the stream) if missing. The group starts at id 0, so entries added
    /// before the group existed are still delivered; an existing group (BUSYGROUP) is left as it is.
    public func ensureGroup(stream: String, group: String) async throws {
        let reply = try await send(RedisCommand("XGROUP", ["CREATE", stream, group, "0", "MKSTREAM"]))
        if let message = reply.errorMessage, !message.hasPrefix("BUSYGROUP") {
            throw RedisError(.commandFailed, message, command: "XGROUP CREATE")
        }
    }

    /// XREADGROUP over several streams (on a cluster, over several slots: see
    /// ``RedisClusterClient/readGroupAcrossSlots(group:consumer:streams:id:count:block:)``).
    ///
    /// - Parameters:
    ///   - ids: `>` for new entries, `0` to re-read this consumer's own pending entries.
    ///   - count: the most entries per stream.
    ///   - block: how long to wait when nothing is there; nil returns at once.
    /// - Returns: the entries per stream, in stream order; streams with nothing are absent.
    public func readGroup(
        group: String, consumer: String, streams: [String], id: String = ">", count: Int, block: Duration?
    ) async throws -> [(stream: String, entries: [StreamEntry])] {
        if let cluster = self as? RedisClusterClient, streams.count > 1 {
            return try await cluster.readGroupAcrossSlots(group: group, consumer: consumer, streams: streams, id: id, count: count, block: block)
        }
        let reply = try await send(Self.xreadgroup(group: group, consumer: consumer, streams: streams, id: id, count: count, block: block))
        return try Self.decodeRead(reply, command: "XREADGROUP")
    }

    /// Whether the commands of one pipeline always run in the order sent, retries included: on one
    /// connection Redis runs them in order (a blocking read holds back what follows it). Not on a
    /// cluster: a command redirected (MOVED, ASK) or asked again (TRYAGAIN) is re-sent without the
    /// ones around it, so a later command of the pipeline may run before it.
    public var runsPipelinesInOrder: Bool { !(self is RedisClusterClient) }

    /// ``readGroup(group:consumer:streams:id:count:block:)`` with `commands` in the same round trip,
    /// run after the read has returned; `followers` is nil where that order is not certain
    /// (``runsPipelinesInOrder``), and the caller then sends the commands itself, after the read.
    public func readGroup(
        group: String, consumer: String, streams: [String], id: String = ">", count: Int, block: Duration?,
        followedBy commands: [RedisCommand]
    ) async throws -> (read: [(stream: String, entries: [StreamEntry])], followers: ArraySlice<RedisReply>?) {
        guard runsPipelinesInOrder, !commands.isEmpty else {
            return (try await readGroup(group: group, consumer: consumer, streams: streams, id: id, count: count, block: block), nil)
        }
        let replies = try await send([Self.xreadgroup(group: group, consumer: consumer, streams: streams, id: id, count: count, block: block)] + commands)
        return (try Self.decodeRead(replies[0], command: "XREADGROUP"), replies.dropFirst())
    }

    /// The XREADGROUP command of ``readGroup(group:consumer:streams:id:count:block:)``, for a pipeline;
    /// decode its reply with ``decodeRead(_:command:)``.
    public static func xreadgroup(group: String, consumer: String, streams: [String], id: String = ">", count: Int, block: Duration?) -> RedisCommand {
        var command = RedisCommand("XREADGROUP", ["GROUP", group, consumer, "COUNT", String(max(count, 1))])
        if let block {
            command.append("BLOCK")
            command.append(max(block.milliseconds, 1))
            command.blockTimeout = block
        }
        command.append("STREAMS")
        for stream in streams { command.append(stream) }
        for _ in streams { command.append(id) }
        return command
    }

    public static func decodeRead(_ reply: RedisReply, command: String) throws(RedisError) -> [(stream: String, entries: [StreamEntry])] {
        if reply.isNull { return [] }
        if let message = reply.errorMessage { throw RedisError(.commandFailed, message, command: command) }
        guard let streams = reply.array else { throw RedisError(.unexpectedReply, "expected an array", command: command) }
        var result: [(stream: String, entries: [StreamEntry])] = []
        for stream in streams {
            guard let pair = stream.array, pair.count == 2, let name = pair[0].string, let entries = pair[1].array else {
                throw RedisError(.unexpectedReply, "expected [stream, entries]", command: command)
            }
            var decoded: [StreamEntry] = []
            decoded.reserveCapacity(entries.count)
            for entry in entries { decoded.append(try StreamEntry(reply: entry)) }
            result.append((name, decoded))
        }
        return result
    }

    /// XAUTOCLAIM: takes over entries of `group` idle for at least `minIdle`, starting at `cursor`.
    public func autoClaim(
        stream: String, group: String, consumer: String, minIdle: Duration, cursor: String = "0-0", count: Int
    ) async throws -> AutoClaimResult {
        let reply = try await send(RedisCommand("XAUTOCLAIM", [
            stream, group, consumer, String(minIdle.milliseconds), cursor, "COUNT", String(count),
        ]))
        return try Self.decodeAutoClaim(reply)
    }

    static func decodeAutoClaim(_ reply: RedisReply) throws(RedisError) -> AutoClaimResult {
        if let message = reply.errorMessage { throw RedisError(.commandFailed, message, command: "XAUTOCLAIM") }
        guard let parts = reply.array, parts.count >= 2, let cursor = parts[0].string, let entries = parts[1].array else {
            throw RedisError(.unexpectedReply, "expected [cursor, entries, deleted?]", command: "XAUTOCLAIM")
        }
        var claimed: [StreamEntry] = []
        var deleted: [String] = []
        for entry in entries {
            // Redis 6.2 reports a deleted entry as a nil element in place.
            if entry.isNull { continue }
            let decoded = try StreamEntry(reply: entry)
            if decoded.fieldList == nil { deleted.append(decoded.id) } else { claimed.append(decoded) }
        }
        if parts.count >= 3, let ids = parts[2].array {
            deleted.append(contentsOf: ids.compactMap(\.string))
        }
        return AutoClaimResult(nextCursor: cursor, entries: claimed, deletedIDs: deleted)
    }
}

/// Backlog of a consumer group: entries not yet delivered to it.
extension RedisClient {
    /// Entries of a ready stream not yet delivered to `group`: its lag, or, when Redis cannot tell, the
    /// stream's length (XLEN reply) less the group's pending entries.
    public static func backlog(length: RedisReply, pending: Int64, groups: RedisReply, group: String) -> Int64 {
        undelivered(in: groups, group: group) ?? max(0, (length.integer ?? 0) - pending)
    }

    /// `XINFO GROUPS <stream>`: read its reply with ``undelivered(in:group:)``.
    public static func xinfoGroups(stream: String) -> RedisCommand {
        RedisCommand("XINFO", ["GROUPS", stream])
    }

    /// The group's `lag` from an XINFO GROUPS reply: entries added to the stream and not yet delivered to
    /// the group. Nil when the group does not exist or Redis cannot tell (after an XDEL inside the
    /// undelivered range, Redis 7 reports no lag); the caller then falls back to XLEN − pending.
    ///
    /// Why not XLEN − pending: acknowledged entries stay in the stream until every older one is
    /// acknowledged too (they are trimmed, not deleted one by one), so the length overstates the backlog.
    public static func undelivered(in reply: RedisReply, group: String) -> Int64? {
        for info in reply.array ?? [] {
            guard let fields = info.array else { continue }
            var name: String?
            var lag: Int64?
            var index = 0
            while index + 1 < fields.count {
                switch fields[index].string {
                case "name": name = fields[index + 1].string
                case "lag": lag = fields[index + 1].integer
                default: break
                }
                index += 2
            }
            if name == group { return lag }
        }
        return nil
    }
}
