import AsyncHTTPClient
import ConveyorCore
import ConveyorMetricNames
import ConveyorObservability
import ConveyorPostgres
import Logging
import Metrics
import NIOCore
import ServiceLifecycle

/// Sends completion webhooks: claims due rows of `webhook_deliveries`, POSTs each task's final record
/// signed with HMAC-SHA256 (``WebhookSignature``), and records every try in the task's history.
///
/// Never on the task path: the Recorder only inserts a row in the transaction that records the outcome,
/// and wakes this service (``wake()``). A pass sends its batch concurrently and waits for all of it, so a
/// receiver that hangs holds up this coordinator's next pass by at most `timeout`; task processing is
/// never held up.
/// At-least-once: a row is claimed with a lease (the request timeout plus a margin), so a coordinator
/// that dies mid-send leaves it to be sent again, by any coordinator (claims use SKIP LOCKED). Failed
/// tries are retried with exponential backoff and full jitter, honouring `Retry-After` as a floor, until
/// `retryFor` after the task finished; then the delivery is given up (and recorded so).
///
/// Wakes at least every `interval`, at once after the Recorder queued deliveries, and again at once
/// while it finds full batches. Graceful shutdown: the requests of the current pass finish (each within
/// its timeout) and are recorded.
public final class WebhookDispatcher: Service, Sendable {
    private let store: WebhookStore
    private let client: HTTPClient
    private let secret: String
    private let hosts: WebhookHostPolicy
    private let retryFor: Duration
    private let timeout: Duration
    private let backoff: Backoff
    private let batchSize: Int
    private let interval: Duration
    private let clock: any Clock<Duration>
    private let logger: Logger
    private let wakeup = Wakeup()
    /// Fired after every pass (tests wait on it).
    public let passes = TestSignal<PeriodicService.PassOutcome>()

    public static let defaultBackoff = Backoff(base: .seconds(1), maximum: .seconds(600))

    public init(
        store: WebhookStore, client: HTTPClient, secret: String, hosts: WebhookHostPolicy, retryFor: Duration, timeout: Duration,
        backoff: Backoff = defaultBackoff, batchSize: Int = 200, interval: Duration = .seconds(1),
        clock: any Clock<Duration> = ContinuousClock(), logger: Logger
    ) {
        self.store = store
        self.client = client
        self.secret = secret
        self.hosts = hosts
        self.retryFor = retryFor
        self.timeout = timeout
        self.backoff = backoff
        self.batchSize = batchSize
        self.interval = interval
        self.clock = clock
        self.logger = logger
    }

    /// Deliveries were queued: send them now rather than at the next interval.
    public func wake() { wakeup.signal() }

    public func run() async throws {
        await PeriodicService(
            name: "delivering webhooks", interval: interval, clock: clock, logger: logger, passes: passes, wakeup: wakeup
        ) { _ in try await self.deliverOnce() }.run()
    }

    /// One pass: claim, send concurrently, record. Returns zero to go again at once after a full batch.
    func deliverOnce() async throws -> Duration? {
        let due = try await store.claimDue(limit: batchSize, lease: timeout + .seconds(30))
        guard !due.isEmpty else { return nil }
        let results = await withTaskGroup(of: (WebhookDelivery, WebhookAttemptResult).self) { group in
            for delivery in due {
                group.addTask { (delivery, await self.send(delivery)) }
            }
            var results: [(delivery: WebhookDelivery, result: WebhookAttemptResult)] = []
            for await result in group { results.append(result) }
            return results
        }
        try await store.record(results)
        for (delivery, result) in results {
            let outcome: String
            switch result {
            case .delivered: outcome = "delivered"
            case .failed(let error, _):
                outcome = "failed"
                if delivery.attempt == 1 || delivery.attempt % 10 == 0 {
                    logger.warning("webhook delivery failed; will retry", metadata: [
                        LogKeys.taskID: "\(delivery.taskID)", LogKeys.correlationID: "\(delivery.correlationID)", "url": "\(delivery.url)",
                        "try": "\(delivery.attempt)", LogKeys.error: "\(error)",
                    ])
                }
            case .gaveUp(let error):
                outcome = "gave_up"
                logger.error("webhook delivery given up", metadata: [
                    LogKeys.taskID: "\(delivery.taskID)", LogKeys.correlationID: "\(delivery.correlationID)", "url": "\(delivery.url)",
                    "tries": "\(delivery.attempt)", LogKeys.error: "\(error)",
                ])
            }
            Counter(label: MetricsCatalog.webhookDeliveries.name, dimensions: [("outcome", outcome)]).increment()
        }
        return due.count >= batchSize ? .zero : nil
    }

    /// One try of one delivery.
    func send(_ delivery: WebhookDelivery) async -> WebhookAttemptResult {
        guard let payload = delivery.payload else {
            return .gaveUp(error: "the task no longer exists or is no longer finished (redriven)")
        }
        if let reason = hosts.refusal(for: delivery.url) {
            return .gaveUp(error: "callback_url \(reason)")
        }
        var request = HTTPClientRequest(url: delivery.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "conveyor-webhooks")
        request.headers.add(name: "Conveyor-Delivery", value: delivery.id)
        request.headers.add(name: "Conveyor-Event", value: "task.finished")
        request.headers.add(name: "X-Correlation-ID", value: delivery.correlationID)
        request.headers.add(
            name: WebhookSignature.headerName,
            value: WebhookSignature.header(body: payload, secret: secret, unixSeconds: WallClock.nowMillis() / 1000))
        request.body = .bytes(ByteBuffer(string: payload))
        var retryAfter: Duration?
        let error: String
        do {
            let response = try await client.execute(request, timeout: .milliseconds(timeout.milliseconds))
            // The receiver's body is not needed; read a little of it for the error and let the rest go.
            let body = try? await response.body.collect(upTo: 4096)
            let code = Int(response.status.code)
            if (200..<300).contains(code) { return .delivered(statusCode: code) }
            retryAfter = response.headers.first(name: "Retry-After").flatMap { RetryAfter.parse($0, nowMillis: WallClock.nowMillis()) }
            let excerpt = body.map { String(buffer: $0).prefix(200) } ?? ""
            error = "the receiver answered \(code)" + (excerpt.isEmpty ? "" : ": \(excerpt)")
        } catch {
            return retryOrGiveUp(delivery, error: "could not deliver: \(error)", retryAfter: nil)
        }
        return retryOrGiveUp(delivery, error: error, retryAfter: retryAfter)
    }

    private func retryOrGiveUp(_ delivery: WebhookDelivery, error: String, retryAfter: Duration?) -> WebhookAttemptResult {
        let now = WallClock.nowMillis()
        let wait = max(backoff.delay(attempt: delivery.attempt - 1), min(retryAfter ?? .zero, .seconds(3600)))
        let next = now + wait.milliseconds
        if next > delivery.createdAtMillis + retryFor.milliseconds {
            return .gaveUp(error: "\(error) (retried for \(retryFor), giving up)")
        }
        return .failed(error: error, nextAttemptAtMillis: next)
    }
}
