import ConveyorCore
import Logging

/// LISTENs to one channel on a connection of its own and hands every notification to a callback.
///
/// After it (re)starts listening it reports ``Event/listening``: notifications sent while it was not
/// listening are lost, so whoever depends on them re-reads what they watch.
public final class PostgresListener: Sendable {
    public enum Event: Sendable, Equatable {
        /// LISTEN is in effect (again): anything sent before may have been missed.
        case listening
        case notification(String)
    }

    private let connection: PostgresConnection
    private let channel: String
    private let logger: Logger

    /// How long one wait blocks the connection's thread: also how soon a stop is noticed.
    static let waitSlice = Duration.milliseconds(500)
    static let backoff = Backoff(base: .milliseconds(100), maximum: .seconds(2))

    /// - Parameter channel: a plain identifier (it is not quoted).
    public init(configuration: PostgresConfiguration, channel: String, logger: Logger) {
        precondition(channel.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }, "channel must be a plain identifier")
        self.connection = PostgresConnection(configuration: configuration, name: "listener-pg", logger: logger)
        self.channel = channel
        self.logger = logger
    }

    /// Listens until the task is cancelled, reconnecting after failures.
    public func run(_ onEvent: @escaping @Sendable (Event) -> Void) async {
        let channel = self.channel
        var failures = 0
        while !Task.isCancelled {
            do {
                let (started, payloads) = try await connection.withSession { session in
                    var started = false
                    if !session.prepared.contains("listen") {
                        try session.execute("LISTEN \(channel)", name: "listen")
                        session.prepared.insert("listen")
                        started = true
                    }
                    return (started, try session.waitForNotifications(timeout: Self.waitSlice))
                }
                if started {
                    if failures > 0 { logger.info("listening for task changes again") }
                    onEvent(.listening)
                }
                for payload in payloads { onEvent(.notification(payload)) }
                failures = 0
            } catch {
                if failures == 0 || failures % 20 == 0 {
                    logger.warning("listening for task changes failed; retrying", metadata: ["error": "\(error)"])
                }
                let delay = Self.backoff.delay(attempt: failures)
                failures += 1
                try? await Task.sleep(for: delay)
            }
        }
    }

    public func close() { connection.close() }
}
