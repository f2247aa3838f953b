import ArgumentParser

struct SchedulesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedules",
        abstract: "Periodic schedules (the registry's schedules:).",
        subcommands: [List.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the schedules with their last and next tick, as JSON.")

        @OptionGroup var connection: TasksCommand.Connection

        func run() async throws {
            try await call(connection) { try await $0.get("/v1/schedules") }
        }
    }
}
