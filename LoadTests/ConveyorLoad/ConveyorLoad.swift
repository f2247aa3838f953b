import ArgumentParser

/// `conveyor-load`: drives a real Conveyor cluster from the outside, as its users and its failures would.
@main
struct ConveyorLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conveyor-load",
        abstract: "Load and failure testing for Conveyor.",
        subcommands: [ChaosCommand.self, RunCommand.self, SearchCommand.self, WatchCommand.self, WorkflowsCommand.self])
}
