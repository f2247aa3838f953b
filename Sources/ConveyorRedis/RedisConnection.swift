import ConveyorCore
import ConveyorMetricNames
import ConveyorWorkerThread
import Logging
import Metrics

/// An async, `Sendable` Redis connection that pipelines.
///
/// Design: one hiredis context on a dedicated thread (``BlockingWorkerThread``). Callers suspend; the
/// thread takes every request that queued up meanwhile, writes all their commands in one pipeline, reads
/// the replies and resumes each caller with its own. So a thousand concurrent callers cost one round trip,
/// and neither NIO's event loops nor Swift's cooperative pool ever block on the network.
///
/// A blocking command (XREADGROUP … BLOCK) holds the connection for its duration: give blocking readers a
/// connection of their own.
///
/// Reconnect: a broken connection fails the requests in flight with ``RedisError/Code/connectionLost``
/// (they may or may not have run), and the next request reconnects. While Redis stays unreachable,
/// attempts are spaced by exponential backoff and requests in between fail fast with
/// ``RedisError/Code/connectionFailed`` instead of each waiting for a connect timeout.
public final class RedisConnection: RedisClient {
    private struct Request: Sendable {
        var commands: [RedisCommand]
        /// Unsafe (unchecked) on purpose: `serve` resumes every request it takes exactly once, and `send`
        /// resumes one the worker refused; the checked kind costs an allocation per pipeline caller.
        var continuation: UnsafeContinuation<[RedisReply], any Error>
    }

    public let configuration: RedisConfiguration
    private let worker: BlockingWorkerThread<Request>

    /// The wait between reconnect attempts while Redis is unreachable.
    public static let reconnectBackoff = Backoff(base: .milliseconds(50), maximum: .seconds(1))

    public init(configuration: RedisConfiguration, name: String = "redis", logger: Logger) {
        self.configuration = configuration
        self.worker = BlockingWorkerThread(name: "conveyor-\(name)") { worker in
            Self.serve(worker: worker, configuration: configuration, name: name, logger: logger)
        }
    }

    deinit { worker.close() }

    /// Sends the commands as one pipeline and returns one reply per command, in order.
    public func send(_ commands: [RedisCommand]) async throws -> [RedisReply] {
        guard !commands.isEmpty else { return [] }
        return try await withUnsafeThrowingContinuation { continuation in
            if !worker.post(Request(commands: commands, continuation: continuation)) {
                continuation.resume(throwing: RedisError(.connectionClosed, "the connection was closed"))
            }
        }
    }

    /// Stops the worker thread after the requests already queued.
    public func close() { worker.close() }

    /// Runs on the worker thread for the connection's whole life.
    private static func serve(
        worker: BlockingWorkerThread<Request>, configuration: RedisConfiguration, name: String, logger: Logger
    ) {
        // Made at the first round trip, after the process has bootstrapped its metrics. A blocking read
        // (XREADGROUP BLOCK) counts its wait as round-trip time: the `connection` label tells them apart.
        var pipelineSize: Recorder?
        var roundTrip: Timer?
        let context = HiredisContext(configuration: configuration)
        let clock = ContinuousClock()
        var failures = 0
        var nextAttempt = clock.now
        while let requests = worker.nextJobs() {
            if !context.isConnected {
                var failure: RedisError?
                if clock.now < nextAttempt {
                    failure = RedisError(.connectionFailed, "Redis at \(configuration.host):\(configuration.port) is unreachable; reconnecting")
                } else {
                    do {
                        try context.connect()
                        if failures > 0 {
                            logger.info("reconnected to Redis", metadata: ["redis": "\(configuration.redactedURL)"])
                        }
                        failures = 0
                    } catch {
                        if failures == 0 {
                            logger.warning("cannot connect to Redis", metadata: ["redis": "\(configuration.redactedURL)", "error": "\(error)"])
                        }
                        nextAttempt = clock.now.advanced(by: reconnectBackoff.ceiling(attempt: failures))
                        failures += 1
                        failure = error
                    }
                }
                if let failure {
                    for request in requests { request.continuation.resume(throwing: failure) }
                    continue
                }
            }
            let commands = requests.flatMap(\.commands)
            let started = clock.now
            let (replies, failure) = context.roundTrip(commands)
            if pipelineSize == nil {
                pipelineSize = Recorder(label: MetricsCatalog.redisPipeline.name, dimensions: [("connection", name)])
                roundTrip = Timer(label: MetricsCatalog.redisRoundTrip.name, dimensions: [("connection", name)])
            }
            pipelineSize?.record(commands.count)
            let elapsed = clock.now - started
            roundTrip?.recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
            var offset = 0
            for request in requests {
                let end = offset + request.commands.count
                if end <= replies.count {
                    request.continuation.resume(returning: Array(replies[offset..<end]))
                } else {
                    var error = failure ?? RedisError(.connectionLost, "reply missing")
                    error.answered = max(0, replies.count - offset)
                    request.continuation.resume(throwing: error)
                }
                offset = end
            }
            if let failure {
                logger.warning("Redis connection lost", metadata: ["error": "\(failure)"])
            }
        }
        context.disconnect()
    }
}
