import ConveyorCore
import ConveyorMetricNames
import ConveyorObservability
import ConveyorPostgres
import Logging
import Metrics
import ServiceLifecycle

/// Removes finished tasks, their events and their idempotency keys once they are older than the
/// retention window (`CONVEYOR_RETENTION`): drops whole generations of partitions (see
/// ``GenerationStore/removeExpired(retention:)``), never a DELETE over the live tables. A task is
/// removed between `retention` and `retention` plus a generation span after it finished.
public struct Retention: Service {
    let store: GenerationStore
    let retention: Duration
    let interval: Duration
    let clock: any Clock<Duration>
    let logger: Logger
    /// Fired after every pass (tests wait on it).
    public let passes = TestSignal<PeriodicService.PassOutcome>()

    public init(client: PostgresClient, retention: Duration, span: Duration, clock: any Clock<Duration> = ContinuousClock(), logger: Logger) {
        self.store = GenerationStore(client: client)
        self.retention = retention
        self.interval = PartitionMaintainer.interval(span: span)
        self.clock = clock
        self.logger = logger
    }

    public func run() async throws {
        await PeriodicService(name: "removing expired generations", interval: interval, clock: clock, logger: logger, passes: passes) { _ in
            _ = try await removeExpired()
            return nil
        }.run()
    }

    public func removeExpired() async throws -> GenerationStore.Removal {
        let removal = try await store.removeExpired(retention: retention)
        if removal != GenerationStore.Removal() {
            Counter(label: MetricsCatalog.generationsDropped.name).increment(by: removal.generationsDropped)
            logger.notice("removed expired tasks and events", metadata: [
                "generations_dropped": "\(removal.generationsDropped)", "tasks_kept": "\(removal.tasksKept)",
                "rows_deleted": "\(removal.rowsDeleted)", "legacy_partitions_dropped": "\(removal.legacyPartitionsDropped)",
                "lock_retries": "\(removal.lockRetries)", "longest_detach_ms": "\(removal.longestDetach.milliseconds)",
            ])
        }
        return removal
    }
}
