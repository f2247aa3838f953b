import ArgumentParser

@main
struct Conveyor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conveyor",
        abstract: "A task broker: HTTP in, Redis Streams between, PostgreSQL as the record.",
        discussion: "Every option can also be set by an environment variable; see the configuration table in docs/configuration.md.",
        subcommands: [CoordinatorCommand.self, AgentCommand.self, MigrateCommand.self, DevCommand.self, TasksCommand.self, SchedulesCommand.self, QueuesCommand.self, DLQCommand.self, WorkflowsCommand.self, OpenAPICommand.self]
    )

    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch CommandExit.configuration {
            Foundation.exit(2)
        } catch CommandExit.failure {
            Foundation.exit(1)
        } catch {
            exit(withError: error)
        }
    }
}

import Foundation
