import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import ConveyorCore
import ConveyorTesting

/// A real HTTP server on a free loopback port, answering every POST with `respond`: a webhook receiver
/// or a push worker for tests. Records every request it got.
final class TestHTTPServer: Sendable {
    struct Received: Sendable {
        var path: String
        var headers: [String: String]
        var body: String
        var atMillis: Int64
    }

    struct Answer: Sendable {
        var status: HTTPResponse.Status
        var body: String = ""
        var headers: [(String, String)] = []
        /// Wait this long before answering (a hung worker).
        var delay: Duration = .zero
    }

    /// What the server got, shared with its route.
    final class Log: Sendable {
        let entries = Mutex<[Received]>([])
    }

    let port: Int
    private let group: ServiceGroup
    private let running: Task<Void, any Error>
    private let log: Log

    var received: [Received] { log.entries.withLock { $0 } }

    static func start(port: Int = 0, respond: @escaping @Sendable (Received, Int) async -> Answer) async throws -> TestHTTPServer {
        let log = Log()
        let router = Router()
        @Sendable func handle(_ request: Request) async throws -> Response {
            let buffer = try await request.body.collect(upTo: 16 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName.lowercased()] = field.value }
            let received = Received(path: request.uri.path, headers: headers, body: String(buffer: buffer), atMillis: WallClock.nowMillis())
            let count = log.entries.withLock { log in
                log.append(received)
                return log.count
            }
            let answer = await respond(received, count)
            if answer.delay > .zero { try? await Task.sleep(for: answer.delay) }
            var response = Response(status: answer.status, body: ResponseBody(byteBuffer: ByteBuffer(string: answer.body)))
            for (name, value) in answer.headers {
                if let field = HTTPField.Name(name) { response.headers[field] = value }
            }
            return response
        }
        router.post("/") { request, _ in try await handle(request) }
        router.post("**") { request, _ in try await handle(request) }
        let listening = Promise<Int>()
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)),
            onServerRunning: { channel in listening.succeed(channel.localAddress?.port ?? 0) },
            logger: TestServers.quietLogger)
        let group = ServiceGroup(configuration: .init(services: [app], logger: TestServers.quietLogger))
        let running = Task { try await group.run() }
        return TestHTTPServer(port: try await listening.value, group: group, running: running, log: log)
    }

    private init(port: Int, group: ServiceGroup, running: Task<Void, any Error>, log: Log) {
        self.port = port
        self.group = group
        self.running = running
        self.log = log
    }

    var url: String { "http://127.0.0.1:\(port)" }

    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await running.value
    }
}
