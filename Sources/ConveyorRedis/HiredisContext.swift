import CHiredis
#if canImport(Glibc)
import ConveyorWorkerThread
import Glibc
#endif
import ConveyorCore

/// A hiredis 0.14 connection (blocking, RESP2). Confined to one ``BlockingWorkerThread``: it is neither
/// `Sendable` nor ever handed to another thread, and every pointer it touches stays inside this file and
/// its reader's ``ReplyBuilder``.
final class HiredisContext {
    private var context: UnsafeMutablePointer<redisContext>?
    private let configuration: RedisConfiguration
    /// The socket timeout in force, so it is changed only when a round trip needs another one.
    private var socketTimeout: Duration?
    /// Builds the replies the context's reader parses (instead of hiredis' tree of C objects).
    private let builder = ReplyBuilder()

    init(configuration: RedisConfiguration) {
        self.configuration = configuration
    }

    deinit { disconnect() }

    var isConnected: Bool { context != nil }

    func disconnect() {
        if let context { redisFree(context) }
        context = nil
        socketTimeout = nil
    }

    /// The deadline of each read and write on the socket: a frozen server (or a black-holed network)
    /// fails the round trip after it, instead of hanging the connection's thread.
    private func setSocketTimeout(_ timeout: Duration) {
        guard let context, timeout != socketTimeout else { return }
        _ = redisSetTimeout(context, Self.timeval(timeout))
        socketTimeout = timeout
    }

    /// How much spare read buffer a connection keeps once what it holds has been parsed.
    ///
    /// hiredis frees its read buffer whenever it is empty with more than 16 KiB to spare
    /// (`REDIS_READER_MAX_BUF`), and one 16 KiB read from the socket grows it past that: under load a
    /// connection freed and regrew it on most reads, each growth a reallocation that made glibc
    /// consolidate its free lists (`malloc_consolidate` under `redisReaderFeed` was 4 % of an agent's
    /// CPU at the ceiling). The buffer holds only what has not been parsed yet (about one read), so a
    /// connection keeps a few tens of KiB; one grown past 1 MiB by a huge value is still given back.
    static let keptReadBuffer = 1 << 20

    /// Opens the connection, sets the socket timeout, authenticates and selects the database.
    func connect() throws(RedisError) {
        disconnect()
        let timeout = Self.timeval(configuration.connectTimeout)
        guard let context = redisConnectWithTimeout(configuration.host, Int32(configuration.port), timeout) else {
            throw RedisError(.connectionFailed, "cannot allocate a hiredis context")
        }
        if context.pointee.err != 0 {
            let message = Self.errorString(context)
            redisFree(context)
            throw RedisError(.connectionFailed, "\(configuration.host):\(configuration.port): \(message)")
        }
        self.context = context
        context.pointee.reader.pointee.maxbuf = Self.keptReadBuffer
        builder.attach(to: context.pointee.reader)
        setSocketTimeout(configuration.commandTimeout)
        _ = redisEnableKeepAlive(context)
        var setup: [RedisCommand] = []
        if let password = configuration.password {
            var auth = RedisCommand("AUTH")
            if let username = configuration.username { auth.append(username) }
            auth.append(password)
            setup.append(auth)
        }
        if configuration.database != 0 {
            setup.append(RedisCommand("SELECT", [String(configuration.database)]))
        }
        guard !setup.isEmpty else { return }
        let (replies, failure) = roundTrip(setup)
        if let failure {
            disconnect()
            throw RedisError(.connectionFailed, failure.message)
        }
        for (command, reply) in zip(setup, replies) {
            if let message = reply.errorMessage {
                disconnect()
                throw RedisError(.connectionFailed, "\(command.name) failed: \(message)", command: command.name)
            }
        }
    }

    /// Writes all commands in one pipeline, then reads their replies in order.
    ///
    /// Returns the replies read before any failure, and the failure. After a failure the connection is
    /// dropped: the commands whose replies are missing may or may not have run.
    func roundTrip(_ commands: [RedisCommand]) -> (replies: [RedisReply], failure: RedisError?) {
        guard let context else { return ([], RedisError(.connectionLost, "not connected")) }
        guard !commands.isEmpty else { return ([], nil) }
        // A blocking read may be held by the server for its BLOCK time before the deadline starts.
        let longestBlock = commands.lazy.compactMap(\.blockTimeout).max() ?? .zero
        setSocketTimeout(configuration.commandTimeout + longestBlock)
        // The whole pipeline in one buffer, handed to hiredis' output buffer in one append.
        var wire: [UInt8] = []
        wire.reserveCapacity(commands.reduce(0) { $0 + $1.respCapacity })
        for command in commands { command.appendRESP(to: &wire) }
        let status = wire.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { redisAppendFormattedCommand(context, $0.baseAddress, $0.count) }
        }
        if status != REDIS_OK {
            let failure = RedisError(.connectionLost, Self.errorString(context), command: commands.first?.name)
            disconnect()
            return ([], failure)
        }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for command in commands {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, raw != nil else {
                let timedOut = context.pointee.err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)
                let failure = timedOut
                    ? RedisError(.timedOut, "no reply within \(socketTimeout ?? configuration.commandTimeout); the connection was dropped", command: command.name)
                    : RedisError(.connectionLost, Self.errorString(context), command: command.name)
                disconnect()
                return (replies, failure)
            }
            // `raw` is the builder itself (see ReplyBuilder), not an object to free.
            guard let reply = builder.takeCompleted() else {
                disconnect()
                return (replies, RedisError(.unexpectedReply, "the reader completed a reply that was not built", command: command.name))
            }
            replies.append(reply)
        }
        return (replies, nil)
    }

    static func withArgv<R>(
        _ command: RedisCommand,
        _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R
    ) -> R {
        command.bytes.withUnsafeBufferPointer { buffer in
            // An empty buffer has no base address; any valid pointer does for zero-length arguments.
            let base = UnsafeRawPointer(buffer.baseAddress) ?? UnsafeRawPointer(bitPattern: 1)!
            var pointers: [UnsafePointer<CChar>?] = []
            pointers.reserveCapacity(command.lengths.count)
            var offset = 0
            for length in command.lengths {
                pointers.append((base + offset).assumingMemoryBound(to: CChar.self))
                offset += length
            }
            return pointers.withUnsafeMutableBufferPointer { argv in
                command.lengths.withUnsafeBufferPointer { lengths in
                    body(Int32(command.lengths.count), argv.baseAddress!, lengths.baseAddress!)
                }
            }
        }
    }

    private static func errorString(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            let bytes = raw.prefix { $0 != 0 }
            let text = String(decoding: bytes, as: UTF8.self)
            return text.isEmpty ? "connection error \(context.pointee.err)" : text
        }
    }

    private static func timeval(_ duration: Duration) -> Glibc.timeval {
        let millis = max(duration.milliseconds, 1)
        return Glibc.timeval(tv_sec: Int(millis / 1000), tv_usec: Int((millis % 1000) * 1000))
    }
}
