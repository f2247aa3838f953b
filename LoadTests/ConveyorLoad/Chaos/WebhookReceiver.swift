import ConveyorCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// The chaos run's webhook receiver: a real HTTP server that checks every delivery's signature, answers
/// about one in six with 503 (so deliveries are retried while processes die), and remembers which tasks
/// it received a valid delivery for.
final class WebhookReceiver: Sendable {
    static let secret = "chaos-webhook-secret-0123456789"

    fileprivate struct State {
        var delivered: [Int64: Int] = [:]
        var invalid = 0
        var refused = 0
        var requests = 0
    }

    let port: Int
    private let state: Shared
    private let group: ServiceGroup
    private let running: Task<Void, any Error>

    final class Shared: Sendable {
        fileprivate let state = Mutex(State())
    }

    var url: String { "http://127.0.0.1:\(port)/hook" }
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
