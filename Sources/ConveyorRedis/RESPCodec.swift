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

    /// Every complete reply in `bytes`, in order.
    package static func parse(_ bytes: [UInt8]) throws(RedisError) -> [RedisReply] {
        guard let reader = redisReaderCreate() else { throw RedisError(.unexpectedReply, "cannot create a RESP reader") }
        defer { redisReaderFree(reader) }
        let fed = bytes.withUnsafeBufferPointer { buffer in
            buffer.baseAddress.map { base in
                base.withMemoryRebound(to: CChar.self, capacity: buffer.count) { redisReaderFeed(reader, $0, buffer.count) }
            } ?? REDIS_OK
        }
        guard fed == REDIS_OK else { throw RedisError(.unexpectedReply, "RESP reader refused the input") }
        var replies: [RedisReply] = []
        while true {
            var raw: UnsafeMutableRawPointer?
            guard redisReaderGetReply(reader, &raw) == REDIS_OK else { throw RedisError(.unexpectedReply, "malformed RESP") }
            guard let raw else { return replies }
            replies.append(HiredisContext.convert(raw.assumingMemoryBound(to: redisReply.self)))
            freeReplyObject(raw)
        }
    }
}
