import CHiredis

/// RESP as hiredis writes and reads it, without a socket: the same formatting and parsing a pipeline
/// round trip does, on bytes in memory. For the benchmarks of the hot path and for tests; the C pointers
/// stay in this module.
package enum RESPCodec {
    /// The wire bytes of `commands`, as one pipeline sends them.
    package static func format(_ commands: [RedisCommand]) -> [UInt8] {
        var wire: [UInt8] = []
        wire.reserveCapacity(commands.reduce(0) { $0 + $1.respCapacity })
        for command in commands { command.appendRESP(to: &wire) }
        return wire
    }

    /// The same bytes from hiredis' own formatter: what ``format(_:)`` is checked against.
    package static func formatWithHiredis(_ commands: [RedisCommand]) -> [UInt8] {
        var wire: [UInt8] = []
        for command in commands {
            var target: UnsafeMutablePointer<CChar>?
            let length = HiredisContext.withArgv(command) { argc, argv, lengths in
                redisFormatCommandArgv(&target, argc, argv, lengths)
            }
            guard length > 0, let target else { continue }
            wire.append(contentsOf: UnsafeRawBufferPointer(start: target, count: Int(length)))
            redisFreeCommand(target)
        }
        return wire
    }

    /// Every complete reply in `bytes`, in order, built as a connection builds them (``ReplyBuilder``).
    ///
    /// - Parameters:
    ///   - chunk: feeds the reader at most this many bytes at a time, as a socket delivers them, so that
    ///     a reply split anywhere is checked to come out whole.
    ///   - builder: the builder to attach to this parse's reader, as a reconnect attaches a
    ///     connection's builder to its new reader.
    package static func parse(_ bytes: [UInt8], chunk: Int = .max, builder: ReplyBuilder = ReplyBuilder()) throws(RedisError) -> [RedisReply] {
        try read(bytes, chunk: chunk, attach: { builder.attach(to: $0) }) { _ in builder.takeCompleted() }
    }

    /// The same replies from hiredis' own objects, converted afterwards (what connections did before
    /// ``ReplyBuilder``): what ``parse(_:chunk:builder:)`` is checked against.
    package static func parseWithHiredisObjects(_ bytes: [UInt8]) throws(RedisError) -> [RedisReply] {
        try read(bytes, chunk: .max, attach: { _ in }) { raw in
            defer { freeReplyObject(raw) }
            return convert(raw.assumingMemoryBound(to: redisReply.self))
        }
    }

    private static func read(
        _ bytes: [UInt8], chunk: Int,
        attach: (UnsafeMutablePointer<redisReader>) -> Void,
        take: (UnsafeMutableRawPointer) -> RedisReply?
    ) throws(RedisError) -> [RedisReply] {
        guard let reader = redisReaderCreate() else { throw RedisError(.unexpectedReply, "cannot create a RESP reader") }
        defer { redisReaderFree(reader) }
        attach(reader)
        var replies: [RedisReply] = []
        var offset = 0
        repeat {
            let end = offset + min(max(chunk, 1), bytes.count - offset)
            let fed = bytes[offset..<end].withUnsafeBufferPointer { buffer in
                buffer.baseAddress.map { base in
                    base.withMemoryRebound(to: CChar.self, capacity: buffer.count) { redisReaderFeed(reader, $0, buffer.count) }
                } ?? REDIS_OK
            }
            guard fed == REDIS_OK else { throw RedisError(.unexpectedReply, "RESP reader refused the input") }
            offset = end
            while true {
                var raw: UnsafeMutableRawPointer?
                guard redisReaderGetReply(reader, &raw) == REDIS_OK else { throw RedisError(.unexpectedReply, "malformed RESP") }
                guard let raw else { break }
                guard let reply = take(raw) else { throw RedisError(.unexpectedReply, "a completed reply was not built") }
                replies.append(reply)
            }
        } while offset < bytes.count
        return replies
    }

    private static func convert(_ pointer: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let reply = pointer.pointee
        switch reply.type {
        case REDIS_REPLY_STRING:
            return .bulk(bytes(reply.str, reply.len))
        case REDIS_REPLY_STATUS:
            return .status(String(decoding: bytes(reply.str, reply.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: bytes(reply.str, reply.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(reply.integer))
        case REDIS_REPLY_ARRAY:
            var elements: [RedisReply] = []
            elements.reserveCapacity(reply.elements)
            for index in 0..<reply.elements {
                elements.append(reply.element[index].map(convert) ?? .null)
            }
            return .array(elements)
        default:
            return .null
        }
    }

    private static func bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ count: Int) -> [UInt8] {
        guard let pointer, count > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }
}
