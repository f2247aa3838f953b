import ConveyorCore
import ConveyorPostgres
import Logging
import ServiceLifecycle

/// Keeps the daily partitions of `task_events` created a few days ahead, so events never land in the
/// default partition (which would block creating that day's partition later).
///
/// Wakes hourly; does nothing at shutdown.
public struct PartitionMaintainer: Service {
    let client: PostgresClient
    let logger: Logger
    let clock: any Clock<Duration>
    var interval: Duration = .seconds(3600)
    static let daysAhead = 3

    public init(client: PostgresClient, clock: any Clock<Duration> = ContinuousClock(), logger: Logger) {
        self.client = client
        self.clock = clock
        self.logger = logger
    }

    static func ensurePartitions(_ client: PostgresClient) async throws {
        _ = try await client.withSession { session in
            try session.query("SELECT conveyor_ensure_event_partitions($1)", [String(daysAhead)], name: "ensure partitions").rows.count
        }
    }

    public func run() async throws {
        let client = self.client
        await PeriodicService(name: "creating task_events partitions", interval: interval, clock: clock, logger: logger) { _ in
            try await Self.ensurePartitions(client)
            return nil
        }.run()
    }
}
