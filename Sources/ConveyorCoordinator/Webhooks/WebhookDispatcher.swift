import AsyncHTTPClient
import ConveyorCore
import ConveyorMetricNames
import ConveyorObservability
import ConveyorPostgres
import Logging
import Metrics
import NIOCore
import ServiceLifecycle
import Synchronization

/// Sends completion webhooks: claims due rows of `webhook_deliveries`, POSTs each task's final record
/// signed with HMAC-SHA256 (``WebhookSignature``), and records every try in the task's history.
///
/// Never on the task path: the Recorder only inserts a row in the transaction that records the outcome,
/// and wakes this service (``wake()``). Sends are a sliding window, not batches that wait for their
/// slowest member: up to `batchSize` tries are in flight, each recorded (in small batches, as they
/// finish) and replaced by a newly claimed one, so a receiver that hangs until the timeout holds up only
/// its own deliveries.
///
/// At-least-once: a row is claimed with a lease (the request timeout plus 30 s), so a coordinator that
/// dies mid-send leaves it to be sent again, by any coordinator (claims use SKIP LOCKED). Failed tries
/// are retried with exponential backoff and full jitter, honouring `Retry-After` as a floor, until
/// `retryFor` after the task finished; then the delivery is given up (and recorded so).
///
/// Claims at least every `interval`, at once after the Recorder queued deliveries, and again as soon as
/// recorded tries free room in a full window. Graceful shutdown: no more claims; the tries in flight
/// finish (each within its timeout) and are recorded.
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
    /// Wakes the claiming loop.
    private let wakeup = Wakeup()
    /// Wakes the recording loop.
    private let finishedWakeup = Wakeup()
    /// Claimed and not yet recorded.
    private let inFlight = Atomic<Int>(0)
    /// Tries that finished and wait to be recorded.
    private let finished = Mutex<[(delivery: WebhookDelivery, result: WebhookAttemptResult)]>([])
    /// Set once no more tries will start: the recording loop ends when the window is empty.
    private let draining = Atomic<Bool>(false)
    /// Fired after every claiming pass (tests wait on it).
    public let passes = TestSignal<PeriodicService.PassOutcome>()

    public static let defaultBackoff = Backoff(base: .seconds(1), maximum: .seconds(600))
    static let recordBackoff = Backoff(base: .milliseconds(100), maximum: .seconds(5))

    /// - Parameter batchSize: the most tries in flight at once.
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
        let (claimed, claims) = AsyncStream.makeStream(of: WebhookDelivery.self)
        await withDiscardingTaskGroup { group in
            group.addTask { await self.recordLoop() }
            group.addTask {
                await PeriodicService(
                    name: "delivering webhooks", interval: self.interval, clock: self.clock, logger: self.logger, passes: self.passes,
                    wakeup: self.wakeup
                ) { _ in try await self.claim(into: claims) }.run()
                claims.finish()
            }
            // Each claimed delivery is sent in a task of its own, as it comes.
            for await delivery in claimed {
                group.addTask {
                    let result = await self.send(delivery)
                    self.finished.withLock { $0.append((delivery, result)) }
                    self.finishedWakeup.signal()
                }
            }
            draining.store(true, ordering: .sequentiallyConsistent)
            finishedWakeup.signal()
        }
    }

    /// One claiming pass: fills the window with due deliveries. Zero (go again at once) when it claimed
    /// a full window's worth and more may be due.
    func claim(into claims: AsyncStream<WebhookDelivery>.Continuation) async throws -> Duration? {
        let room = batchSize - inFlight.load(ordering: .sequentiallyConsistent)
        guard room > 0 else { return nil }  // the recording loop wakes this one when room frees up
        inFlight.add(room, ordering: .sequentiallyConsistent)
        let due: [WebhookDelivery]
        do {
            due = try await store.claimDue(limit: room, lease: timeout + .seconds(30))
        } catch {
            inFlight.subtract(room, ordering: .sequentiallyConsistent)
            throw error
        }
        inFlight.subtract(room - due.count, ordering: .sequentiallyConsistent)
        for delivery in due { claims.yield(delivery) }
        return due.count == room ? .zero : nil
    }

    /// Records finished tries in batches as they come, until the window is empty after shutdown.
    private func recordLoop() async {
        var failures = 0
        while true {
            let batch = finished.withLock { finished in
                defer { finished.removeAll(keepingCapacity: true) }
                return finished
            }
            if batch.isEmpty {
                if draining.load(ordering: .sequentiallyConsistent) && inFlight.load(ordering: .sequentiallyConsistent) == 0 { return }
                if Task.isCancelled { return }
                await finishedWakeup.wait()
                continue
            }
            do {
                try await store.record(batch)
                failures = 0
            } catch {
                // Kept and tried again: PostgreSQL may be away. Meanwhile the claims' leases may run out,
                // and those deliveries are sent again (at-least-once).
                finished.withLock { $0.insert(contentsOf: batch, at: 0) }
                if failures % 20 == 0 {
                    logger.warning("recording webhook tries failed; will retry", metadata: [LogKeys.error: "\(error)", "tries": "\(batch.count)"])
                }
                failures += 1
                try? await Task.sleep(for: Self.recordBackoff.delay(attempt: failures - 1))
                continue
            }
            let wasFull = inFlight.subtract(batch.count, ordering: .sequentiallyConsistent).oldValue >= batchSize
            if wasFull { wakeup.signal() }
            report(batch)
        }
    }

    private func report(_ batch: [(delivery: WebhookDelivery, result: WebhookAttemptResult)]) {
        var counts: [String: Int] = [:]
        for (delivery, result) in batch {
            switch result {
            case .delivered:
                counts["delivered", default: 0] += 1
            case .failed(let error, _):
                counts["failed", default: 0] += 1
                if delivery.attempt == 1 || delivery.attempt % 10 == 0 {
                    logger.warning("webhook delivery failed; will retry", metadata: [
                        LogKeys.taskID: "\(delivery.taskID)", LogKeys.correlationID: "\(delivery.correlationID)", "url": "\(delivery.url)",
                        "try": "\(delivery.attempt)", LogKeys.error: "\(error)",
                    ])
                }
            case .gaveUp(let error):
                counts["gave_up", default: 0] += 1
                logger.error("webhook delivery given up", metadata: [
                    LogKeys.taskID: "\(delivery.taskID)", LogKeys.correlationID: "\(delivery.correlationID)", "url": "\(delivery.url)",
                    "tries": "\(delivery.attempt)", LogKeys.error: "\(error)",
                ])
            }
        }
        for (outcome, count) in counts {
            Counter(label: MetricsCatalog.webhookDeliveries.name, dimensions: [("outcome", outcome)]).increment(by: count)
        }
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
