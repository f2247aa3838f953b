import ArgumentParser
import ConveyorConfiguration
import ConveyorCore
import ConveyorPostgres
import Foundation

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply pending PostgreSQL migrations (safe to run twice, or from several processes at once).")

    @Option(help: "PostgreSQL URL. [env: CONVEYOR_POSTGRES_URL]") var postgresURL: String?

    func run() async throws {
        try await reportingConfigurationErrors {
            let settings = SettingsReader(overrides: [Settings.postgresURL: postgresURL])
            let configuration = try settings.postgresConfiguration()
            let logger = try settings.bootstrapLogging(service: "migrate", instance: "migrate")
            let client = PostgresClient(configuration: configuration, name: "migrate", logger: logger)
            defer { client.close() }
            do {
                let applied = try await Migrator.migrate(client)
                print(applied.isEmpty ? "schema is up to date" : "applied migrations \(applied.map(String.init).joined(separator: ", "))")
            } catch {
                throw LocalServerFailure(message: "migration failed on \(configuration.redactedURL): \(error)")
            }
        }
    }
}
