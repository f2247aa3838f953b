import ConveyorCore
import Logging
import ServiceLifecycle

/// Hands the progress reports that are due to the Completer, which sends them with its next batch:
/// every `interval` (200 ms), so a first report is out within a fifth of a second and later ones about
/// once a second per attempt.
///
/// Graceful shutdown: stops; the last report of each attempt still goes out with its outcome.
final class ProgressFlusher: Service, Sendable {
    private let book: ProgressBook
    private let completer: Completer
    /// Whether the agent still runs an attempt, by ready-entry id.
    private let running: @Sendable (Delivery.Key) -> Bool
    private let interval: Duration
    private let clock: any Clock<Duration>
    private let logger: Logger

    static let defaultInterval = Duration.milliseconds(200)

    init(
        book: ProgressBook, completer: Completer, running: @escaping @Sendable (Delivery.Key) -> Bool, interval: Duration = defaultInterval,
        clock: any Clock<Duration> = ContinuousClock(), logger: Logger
    ) {
        self.book = book
        self.running = running
        self.completer = completer
        self.interval = interval
        self.clock = clock
        self.logger = logger
    }

    func run() async throws {
        await PeriodicService(name: "sending progress", interval: interval, clock: clock, logger: logger) { _ in
            await self.flushOnce(now: .now)
            return nil
        }.run()
    }

    func flushOnce(now: ContinuousClock.Instant) async {
        for (delivery, progress, at) in book.due(now: now, running: running) {
            await completer.progress(delivery, progress, atMillis: at)
        }
    }
}
