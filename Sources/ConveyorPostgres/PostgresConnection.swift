import ConveyorCore
import ConveyorWorkerThread
import Logging
import Synchronization

/// One PostgreSQL connection on a thread of its own, with an async API.
///
/// Why a thread: libpq is blocking, and a blocked call must not hold a NIO event loop or a cooperative
/// pool thread. Work is submitted as a closure that runs on the connection's thread with the
/// ``PostgresSession``, so a whole transaction (COPY, queries, COMMIT) is one hop.
///
/// Reconnect: a job that finds the connection down reconnects first; while PostgreSQL stays unreachable,
/// attempts are spaced by exponential backoff and jobs in between fail fast with
/// ``PostgresError/Code/connectionFailed``.
public final class PostgresConnection: Sendable {
    private typealias Job = @Sendable (PostgresSession?, PostgresError?) -> Void

    private let worker: BlockingWorkerThread<Job>
    private let queued = Atomic<Int>(0)

    public static let reconnectBackoff = Backoff(base: .milliseconds(100), maximum: .seconds(1))

    /// - Parameters:
    ///   - url: a `postgres://` URL; a connect timeout and keepalives are added unless it sets them.
    ///   - statementTimeout: how long one statement may wait for an answer (nil: without bound).
    public init(
        url: String, name: String = "postgres", connectTimeout: Duration = PostgresConfiguration.defaultConnectTimeout,
        statementTimeout: Duration? = PostgresConfiguration.defaultStatementTimeout, logger: Logger
    ) {
        let connectionString = PostgresConfiguration.connectionString(url: url, connectTimeout: connectTimeout)
        self.worker = BlockingWorkerThread(name: "conveyor-\(name)") { worker in
            Self.serve(worker: worker, url: connectionString, statementTimeout: statementTimeout, logger: logger)
        }
    }

    public convenience init(configuration: PostgresConfiguration, name: String = "postgres", logger: Logger) {
        self.init(
            url: configuration.url, name: name, connectTimeout: configuration.connectTimeout,
            statementTimeout: configuration.statementTimeout, logger: logger)
    }

    deinit { worker.close() }

    /// Jobs submitted and not yet finished: the pool sends new work to the least busy connection.
    var load: Int { queued.load(ordering: .relaxed) }

    /// Runs `body` on the connection's thread. Errors thrown by `body` are rethrown to the caller.
    public func withSession<T: Sendable>(_ body: @escaping @Sendable (PostgresSession) throws -> T) async throws -> T {
        queued.add(1, ordering: .relaxed)
        defer { queued.subtract(1, ordering: .relaxed) }
        // Unsafe (unchecked) on purpose: the job resumes it exactly once, or, when the worker refused the
        // job, the line below does; the checked kind costs an allocation per statement batch.
        return try await withUnsafeThrowingContinuation { continuation in
            let posted = worker.post { session, failure in
                guard let session else {
                    continuation.resume(throwing: failure ?? PostgresError(.connectionFailed, "no connection"))
                    return
                }
                continuation.resume(with: Result { try body(session) })
            }
            if !posted {
                continuation.resume(throwing: PostgresError(.connectionClosed, "the connection was closed"))
            }
        }
    }

    public func close() { worker.close() }

    private static func serve(worker: BlockingWorkerThread<Job>, url: String, statementTimeout: Duration?, logger: Logger) {
        let session = PostgresSession(url: url, statementTimeout: statementTimeout)
        let clock = ContinuousClock()
        var failures = 0
        var nextAttempt = clock.now
        while let jobs = worker.nextJobs() {
            for job in jobs {
                if !session.isConnected {
                    if clock.now < nextAttempt {
                        job(nil, PostgresError(.connectionFailed, "PostgreSQL is unreachable; reconnecting"))
                        continue
                    }
                    do {
                        try session.connect()
                        if failures > 0 { logger.info("reconnected to PostgreSQL") }
                        failures = 0
                    } catch {
                        if failures == 0 { logger.warning("cannot connect to PostgreSQL", metadata: ["error": "\(error)"]) }
                        nextAttempt = clock.now.advanced(by: reconnectBackoff.ceiling(attempt: failures))
                        failures += 1
                        job(nil, error)
                        continue
                    }
                }
                job(session, nil)
            }
        }
        session.disconnect()
    }
}

/// A small pool of ``PostgresConnection``s. Each job goes to the connection with the fewest jobs queued.
public final class PostgresClient: Sendable {
    public let configuration: PostgresConfiguration
    private let connections: [PostgresConnection]

    public init(configuration: PostgresConfiguration, name: String = "postgres", logger: Logger) {
        self.configuration = configuration
        self.connections = (0..<configuration.poolSize).map {
            PostgresConnection(configuration: configuration, name: "\(name)-\($0)", logger: logger)
        }
    }

    public func withSession<T: Sendable>(_ body: @escaping @Sendable (PostgresSession) throws -> T) async throws -> T {
        let connection = connections.min { $0.load < $1.load }!
        return try await connection.withSession(body)
    }

    public func close() {
        for connection in connections { connection.close() }
    }
}
