import ConveyorCore
import ConveyorPostgres
import Logging
import ServiceLifecycle

/// Opens the next generation of `tasks` and `task_events` partitions (see ``GenerationStore``) once the
/// open one is a generation span old or half its ids are taken, so retention can later drop old work a
/// generation at a time. Any coordinator may run it: opening is idempotent and serialised in PostgreSQL.
public struct PartitionMaintainer: Service {
    let store: GenerationStore
    let span: Duration
    let interval: Duration
    let clock: any Clock<Duration>
    let logger: Logger
    /// Fired after every pass (tests wait on it).
    public let passes = TestSignal<PeriodicService.PassOutcome>()

    /// - Parameter span: how long a generation stays open (``CoordinatorConfiguration/generationSpan``).
    public init(client: PostgresClient, span: Duration, clock: any Clock<Duration> = ContinuousClock(), logger: Logger) {
        self.store = GenerationStore(client: client)
        self.span = span
        self.interval = Self.interval(span: span)
        self.clock = clock
        self.logger = logger
    }

    /// A quarter of the span, at most an hour: a generation closes at most that late.
    static func interval(span: Duration) -> Duration {
        min(.seconds(3600), max(span / 4, .milliseconds(100)))
    }

    public func run() async throws {
        await PeriodicService(name: "opening a generation of partitions", interval: interval, clock: clock, logger: logger, passes: passes) { _ in
            try await openNextIfDue()
            return nil
        }.run()
    }

    /// Opens the next generation when the open one is due to close; returns whether this call opened one.
    @discardableResult
    public func openNextIfDue() async throws -> Bool {
        // Completes an open whose second step failed (see GenerationStore.advance()).
        try await store.advance()
        guard let current = try await store.generations().last else {
            throw PostgresError(.unexpectedResult, "conveyor_generations is empty", query: "generations")
        }
        let used = try await store.sequencePosition() - current.firstID
        guard current.age >= span || used >= Migrations.generationWidth / 2 else { return false }
        let started = ContinuousClock.now
        let opened = try await store.open(current.number + 1)
        if opened {
            logger.notice("opened a generation of partitions", metadata: [
                "generation": "\(current.number + 1)", "previous_age": "\(current.age)",
                "open_ms": "\((ContinuousClock.now - started).milliseconds)",
            ])
        }
        return opened
    }
}
