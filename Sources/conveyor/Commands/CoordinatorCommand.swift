import ArgumentParser
import ConveyorConfiguration
import ConveyorCoordinator
import ConveyorCore
import ConveyorObservability
import Logging
import ServiceLifecycle

struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run the HTTP API with the Submitter and the Recorder (applies migrations first).")

    @Option(help: "Port of the HTTP API. [env: CONVEYOR_HTTP_PORT, default 8080]") var port: Int?
    @Option(help: "Address to listen on. [env: CONVEYOR_HTTP_HOST, default 127.0.0.1]") var host: String?
    @Option(help: "Redis URL. [env: CONVEYOR_REDIS_URL]") var redisURL: String?
    @Option(help: "PostgreSQL URL. [env: CONVEYOR_POSTGRES_URL]") var postgresURL: String?
    @Option(help: "Task-type registry (YAML). [env: CONVEYOR_TASK_TYPES]") var taskTypes: String?

    func run() async throws {
        try await reportingConfigurationErrors {
            let settings = SettingsReader(overrides: [
                Settings.httpPort: port.map(String.init), Settings.httpHost: host, Settings.redisURL: redisURL,
                Settings.postgresURL: postgresURL, Settings.taskTypes: taskTypes,
            ])
            let configuration = try settings.coordinatorConfiguration()
            let logger = try settings.bootstrapLogging(service: "coordinator", instance: configuration.instanceID)
            let grace = try settings.shutdownGrace()
            let coordinator = Coordinator(configuration: configuration, logger: logger)
            defer { coordinator.close() }
            try await migrate(coordinator, logger: logger)
            for warning in await coordinator.redis.durabilityWarnings() { logger.warning("\(warning)") }
            let app = try coordinator.makeApplication { port in
                logger.info("coordinator listening", metadata: ["host": "\(configuration.host)", "port": "\(port)"])
            }
            // The Loki shipper first, so it stops last and ships what the others logged while stopping.
            let services: [any Service] = (LoggingSetup.lokiShipper.map { [$0] } ?? []) + [app]
            var group = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            group.maximumGracefulShutdownDuration = grace
            group.maximumCancellationDuration = .seconds(10)
            try await ServiceGroup(configuration: group).run()
        }
    }

    /// PostgreSQL may still be starting next to us: retry for a while, then give up with one clear line.
    private func migrate(_ coordinator: Coordinator, logger: Logger) async throws {
        var attempt = 0
        while true {
            do {
                try await coordinator.migrate()
                return
            } catch {
                attempt += 1
                if attempt >= 15 {
                    throw LocalServerFailure(message: "cannot migrate PostgreSQL at \(coordinator.configuration.postgres.redactedURL): \(error)")
                }
                logger.warning("PostgreSQL not ready; retrying", metadata: ["error": "\(error)"])
                try await Task.sleep(for: .seconds(1))
            }
        }
    }
}
