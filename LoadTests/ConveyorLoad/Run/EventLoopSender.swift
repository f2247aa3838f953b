import Foundation
import NIOCore
import NIOPosix

/// Single POSTs sent from NIO's event loops: one keep-alive HTTP/1.1 connection per sender, the next
/// request written from the handler that read the previous reply (closed loop) or from a task scheduled
/// at its intended time (open loop).
///
/// Written by hand because the load generator shares the machine with what it measures: through
/// AsyncHTTPClient and an `await` per request it needed 154 µs of CPU per single POST (46 % of a core
/// at 3,000 requests a second), a request object, a header table and two thread hops each. Here a
/// request is one buffer written and one reply scanned for its status line, `Content-Length`,
/// `Retry-After` and the id, on the thread that read it. Replies must carry `Content-Length` (the
/// coordinator's do); anything else is counted as an error.
final class EventLoopSender: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// A request waits this long for its reply before the sender counts a timeout and closes.
    static let replyTimeout = Duration.seconds(30)

    private let load: LoadRun
    private let schedule: LoadRun.Schedule
    private let head: String
    private var received: ByteBuffer?
    private var inFlight: (index: Int, intended: ContinuousClock.Instant, sentAt: ContinuousClock.Instant)?
    /// A request claimed and scheduled for its intended time (open loop), not yet written.
    private var scheduled: (index: Int, intended: ContinuousClock.Instant)?
    private var finished = false

    init(load: LoadRun, schedule: LoadRun.Schedule, host: String) {
        self.load = load
        self.schedule = schedule
        var head = "POST /v1/tasks HTTP/1.1\r\nHost: \(host)\r\nContent-Type: application/json\r\n"
        if let token = load.plan.token { head += "Authorization: Bearer \(token)\r\n" }
        self.head = head
    }

    /// Where an event-loop sender connects: a plain `http://host[:port]` base URL without a path (others
    /// go through AsyncHTTPClient).
    static func target(of baseURL: String) -> (host: String, port: Int)? {
        guard let url = URL(string: baseURL), url.scheme == "http", let host = url.host, !host.contains(":"),
              url.path.isEmpty || url.path == "/" else { return nil }
        return (host, url.port ?? 80)
    }

    /// Opens `connections` senders and returns when every one has finished its part of the load. A
    /// connection that closes while the load still runs (the coordinator closed it, a reply timed out)
    /// is opened again; one that cannot be opened ends its sender, counted as a failure.
    static func run(_ load: LoadRun, schedule: LoadRun.Schedule, connections: Int) async {
        guard let (host, port) = target(of: load.plan.baseURL) else { return }
        let hostHeader = "\(host):\(port)"
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<connections {
                group.addTask {
                    let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                        .channelOption(.socketOption(.tcp_nodelay), value: 1)
                        .connectTimeout(.seconds(5))
                        .channelInitializer { channel in
                            channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(EventLoopSender(load: load, schedule: schedule, host: hostHeader))
                            }
                        }
                    while !load.isOver(schedule) {
                        do {
                            let channel = try await bootstrap.connect(host: host, port: port).get()
                            try? await channel.closeFuture.get()
                        } catch {
                            load.recordConnectionFailure("connect: \(error)")
                            return
                        }
                    }
                }
            }
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        scheduleTimeoutCheck(context: context)
        sendNext(context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard inFlight != nil else {
            // A reply to no request (a server's unsolicited 408, say): this connection is out of step.
            context.close(promise: nil)
            return
        }
        var bytes = unwrapInboundIn(data)
        if received == nil {
            received = bytes
        } else {
            received!.writeBuffer(&bytes)
        }
        switch Self.parseReply(&received!) {
        case .incomplete:
            return
        case .malformed(let reason):
            complete(cause: reason, ids: [], shed: false)
            context.close(promise: nil)
        case .reply(let status, let retryAfter, let body):
            if status == 200 || status == 201 {
                let ids = LoadRun.acceptedIDs(in: body, single: true)
                complete(cause: ids.count == 1 ? nil : "reply without 1 ids", ids: ids, shed: false)
            } else if LoadRun.isShed(status: status, hasRetryAfter: retryAfter, body: body) {
                complete(cause: nil, ids: [], shed: true)
            } else {
                complete(cause: "HTTP \(status)", ids: [], shed: false)
            }
            if received?.readableBytes == 0 { received = nil }
            sendNext(context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if inFlight != nil { complete(cause: "connection closed", ids: [], shed: false) }
        abandonScheduled()
        finished = true
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if inFlight != nil { complete(cause: "\(type(of: error))", ids: [], shed: false) }
        context.close(promise: nil)
    }

    private func complete(cause: String?, ids: [Int64], shed: Bool) {
        guard let request = inFlight else { return }
        inFlight = nil
        load.record(tasks: 1, ids: ids, cause: cause, shed: shed, intended: request.intended)
        if cause == nil, !shed { load.cancelIfDue(index: request.index, ids: ids) }
    }

    /// Claims the next request of the load and writes it now or at its intended time; closes the
    /// connection once the load is over.
    private func sendNext(context: ChannelHandlerContext) {
        guard !finished, inFlight == nil, scheduled == nil else { return }
        guard let (index, intended) = load.claim(schedule) else {
            finished = true
            context.close(promise: nil)
            return
        }
        let wait = intended - .now
        if wait > .zero {
            scheduled = (index, intended)
            // Runs on this event loop: the closure need not be Sendable.
            context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(wait.components.seconds * 1_000_000_000 + wait.components.attoseconds / 1_000_000_000)) {
                self.scheduled = nil
                self.write(index: index, intended: intended, context: context)
            }
        } else {
            write(index: index, intended: intended, context: context)
        }
    }

    /// A claimed request whose connection closed before it was written counts as sent and failed, so
    /// that every claimed request is counted once.
    private func abandonScheduled() {
        guard let request = scheduled else { return }
        scheduled = nil
        load.willSend(tasks: 1)
        load.record(tasks: 1, ids: [], cause: "connection closed", shed: false, intended: request.intended)
    }

    private func write(index: Int, intended: ContinuousClock.Instant, context: ChannelHandlerContext) {
        guard !finished else { return }
        let body = load.body(index: index, tasks: 1).body
        var buffer = context.channel.allocator.buffer(capacity: head.utf8.count + body.utf8.count + 32)
        buffer.writeString(head)
        buffer.writeString("Content-Length: \(body.utf8.count)\r\n\r\n")
        buffer.writeString(body)
        inFlight = (index, intended, .now)
        load.willSend(tasks: 1)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    /// Once a second: a reply overdue by ``replyTimeout`` is counted as a timeout and the connection
    /// closed (the sender's part of the load ends with it).
    private func scheduleTimeoutCheck(context: ChannelHandlerContext) {
        context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(1)) {
            guard !self.finished else { return }
            if let request = self.inFlight, ContinuousClock.now - request.sentAt > Self.replyTimeout {
                self.complete(cause: "timeout", ids: [], shed: false)
                context.close(promise: nil)
                return
            }
            self.scheduleTimeoutCheck(context: context)
        }
    }

    enum ParsedReply {
        case incomplete
        case malformed(String)
        case reply(status: Int, retryAfter: Bool, body: ByteBuffer)
    }

    /// Takes one whole reply off the front of `buffer`: the status line, the headers (only
    /// `Content-Length`, `Retry-After` and `Transfer-Encoding` matter here) and a body of
    /// `Content-Length` bytes.
    ///
    /// Read as bytes in place, without a `String` per line: through `split`, `lowercased()` and
    /// Foundation's trimming this was 45 % of the load generator's CPU under single POSTs (a profile at
    /// 10,000 requests a second), and the load generator must stay far from being the bottleneck.
    static func parseReply(_ buffer: inout ByteBuffer) -> ParsedReply {
        let head = buffer.withUnsafeReadableBytes { ReplyHead.parse($0) }
        switch head {
        case .incomplete:
            return .incomplete
        case .malformed(let reason):
            return .malformed(reason)
        case .complete(let status, let retryAfter, let headBytes, let length):
            guard buffer.readableBytes >= headBytes + length else { return .incomplete }
            buffer.moveReaderIndex(forwardBy: headBytes)
            let body = buffer.readSlice(length: length)!
            return .reply(status: status, retryAfter: retryAfter, body: body)
        }
    }
}
