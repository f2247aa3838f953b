@testable import conveyor_load
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing

@Suite("The load generator's cancels")
struct LoadRunCancelTests {
    /// Answers `POST /v1/tasks` with 201 and the next id, and `POST /v1/tasks/{id}/cancel` with 200 for
    /// an even id and 409 for an odd one; remembers the ids it was asked to cancel.
    private final class TaskServer: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let nextID = Atomic<Int64>(1)
        let cancelled = Mutex<[Int64]>([])

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .head(let head) = unwrapInboundIn(data) else { return }
            let status: HTTPResponseStatus
            let body: String
            if head.method == .POST, head.uri == "/v1/tasks" {
                let id = nextID.add(1, ordering: .relaxed).oldValue
                status = .created
                body = "{\"id\":\(id),\"status\":\"queued\"}"
            } else if head.method == .POST, head.uri.hasPrefix("/v1/tasks/"), head.uri.hasSuffix("/cancel"),
                      let id = Int64(head.uri.dropFirst("/v1/tasks/".count).dropLast("/cancel".count)) {
                cancelled.withLock { $0.append(id) }
                status = id % 2 == 0 ? .ok : .conflict
                body = "{}"
            } else {
                status = .notFound
                body = "{}"
            }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Length", value: String(body.utf8.count))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    /// Runs `plan` against a ``TaskServer`` from the event-loop senders (checked: the general client
    /// would cancel too, and is not what these tests are about).
    private func run(_ plan: (String) throws -> LoadPlan) async throws -> (LoadRun.Result, cancelled: [Int64], submitted: Int64) {
        let server = TaskServer()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(server)
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(channel.localAddress?.port)
        let load = LoadRun(plan: try plan("http://127.0.0.1:\(port)"))
        #expect(load.sendsFromEventLoops)
        let result = await load.run()
        try await channel.close()
        return (result, server.cancelled.withLock { $0 }, server.nextID.load(ordering: .relaxed) - 1)
    }

    @Test("single POSTs from the event loops cancel every n-th accepted task, and the run waits for every answer")
    func eventLoopSendersCancel() async throws {
        let (result, cancelled, submitted) = try await run { baseURL in
            LoadPlan(baseURL: baseURL, count: 40, batch: 1, concurrency: 4, mix: try LoadShape.mix("noop=1"), progress: false, cancelEvery: 4)
        }
        #expect(submitted == 40)
        #expect(result.acceptedIDs.count == 40)
        #expect(cancelled.count == 10)
        // The ids the server handed out for requests 0, 4, 8, …: which id a request got depends on the
        // order the senders' requests reached the server, so only the count and the answers are fixed.
        #expect(Set(cancelled).isSubset(of: Set(result.acceptedIDs)))
        #expect(result.cancelled == cancelled.filter { $0 % 2 == 0 }.count)
        #expect(result.cancelTooLate == cancelled.filter { $0 % 2 != 0 }.count)
    }

    @Test("a run without cancels sends none")
    func noCancels() async throws {
        let (single, singleCancels, _) = try await run { baseURL in
            LoadPlan(baseURL: baseURL, count: 20, batch: 1, concurrency: 2, mix: try LoadShape.mix("noop=1"), progress: false)
        }
        #expect(single.acceptedIDs.count == 20 && singleCancels.isEmpty)
    }
}
