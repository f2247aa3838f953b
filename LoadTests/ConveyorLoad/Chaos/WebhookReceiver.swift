import ConveyorCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// The chaos run's webhook receiver and push worker: a real HTTP server. On `/hook` it checks every
/// delivery's signature, answers about one in six with 503 (so deliveries are retried while processes
/// die), and remembers which tasks it received a valid delivery for. On `/work` it runs the `remote`
/// tasks of the HTTP push handler: their params back as the result, with about one in six answered 503
/// (so attempts are retried too).
final class WebhookReceiver: Sendable {
    static let secret = "chaos-webhook-secret-0123456789"

    fileprivate struct State {
        var delivered: [Int64: Int] = [:]
        var invalid = 0
        var refused = 0
        var requests = 0
        var workRequests = 0
        var workRefused = 0
    }

    let port: Int
    private let state: Shared
    private let group: ServiceGroup
    private let running: Task<Void, any Error>

    final class Shared: Sendable {
        fileprivate let state = Mutex(State())
    }

    var url: String { "http://127.0.0.1:\(port)/hook" }
    var workerURL: String { "http://127.0.0.1:\(port)/work" }
    /// Requests the push handler made, and how many of them were refused with 503.
    var work: (requests: Int, refused: Int) { state.state.withLock { ($0.workRequests, $0.workRefused) } }
    /// Tasks with at least one valid delivery, and how many each got.
    var delivered: [Int64: Int] { state.state.withLock { $0.delivered } }
    var invalid: Int { state.state.withLock { $0.invalid } }
    var refused: Int { state.state.withLock { $0.refused } }

    static func start() async throws -> WebhookReceiver {
        let shared = Shared()
        let router = Router()
        router.post("hook") { request, _ -> Response in
            let body = String(buffer: try await request.body.collect(upTo: 1 << 20))
            let signature = request.headers[HTTPField.Name("Conveyor-Signature")!] ?? ""
            let valid = WebhookSignature.verify(header: signature, body: body, secret: secret, nowSeconds: WallClock.nowMillis() / 1000)
            let id = (try? JSONValue.parse(body))?["task"]?["id"]?.intValue
            let refuse = shared.state.withLock { state -> Bool in
                state.requests += 1
                guard valid, let id else {
                    state.invalid += 1
                    return false
                }
                if state.requests % 6 == 0 {
                    state.refused += 1
                    return true
                }
                state.delivered[id, default: 0] += 1
                return false
            }
            return Response(status: refuse ? .serviceUnavailable : (valid ? .noContent : .unauthorized))
        }
        router.post("work") { request, _ -> Response in
            let body = String(buffer: try await request.body.collect(upTo: 1 << 20))
            let refuse = shared.state.withLock { state -> Bool in
                state.workRequests += 1
                if state.workRequests % 6 == 0 { state.workRefused += 1 }
                return state.workRequests % 6 == 0
            }
            if refuse { return Response(status: .serviceUnavailable) }
            let params = (try? JSONValue.parse(body))?["params"] ?? .null
            return Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: "{\"echo\":\(params.serialized)}")))
        }
        let listening = Promise<Int>()
        let logger = Logger(label: "conveyor.chaos.webhooks", factory: { _ in SwiftLogNoOpLogHandler() })
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in listening.succeed(channel.localAddress?.port ?? 0) }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let running = Task { try await group.run() }
        return WebhookReceiver(port: try await listening.value, state: shared, group: group, running: running)
    }

    private init(port: Int, state: Shared, group: ServiceGroup, running: Task<Void, any Error>) {
        self.port = port
        self.state = state
        self.group = group
        self.running = running
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await running.value
    }
}
