import ConveyorObservability
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
    var interval: Duration = .seconds(3600)
    static let daysAhead = 3

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    static func ensurePartitions(_ client: PostgresClient) async throws {
        _ = try await client.withSession { session in
            try session.query("SELECT conveyor_ensure_event_partitions($1)", [String(daysAhead)], name: "ensure partitions").rows.count
        }
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await Self.ensurePartitions(client)
            } catch {
                logger.warning("could not create task_events partitions", metadata: [LogKeys.error: "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
        }
    }
}
