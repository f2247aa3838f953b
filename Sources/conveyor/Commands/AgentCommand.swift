import ArgumentParser
import ConveyorAgent
import ConveyorConfiguration
import ConveyorCore
import ConveyorObservability

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run an agent: read tasks from Redis, execute them, report their outcomes.")

    @Option(help: "Most tasks run at once. [env: CONVEYOR_AGENT_CONCURRENCY, default 64]") var concurrency: Int?
    @Option(help: "Port of the agent's HTTP endpoint (/health). [env: CONVEYOR_METRICS_PORT]") var metricsPort: Int?
    @Option(help: "Comma-separated queues to serve. [env: CONVEYOR_AGENT_QUEUES, default: all]") var queues: String?
    @Option(help: "Agent name (stable across restarts resumes its own pending tasks). [env: CONVEYOR_AGENT_ID]") var agentID: String?
    @Option(help: "Redis URL. [env: CONVEYOR_REDIS_URL]") var redisURL: String?
    @Option(help: "Task-type registry (YAML). [env: CONVEYOR_TASK_TYPES]") var taskTypes: String?

    func run() async throws {
        try await reportingConfigurationErrors {
            let settings = SettingsReader(overrides: [
                Settings.agentConcurrency: concurrency.map(String.init), Settings.metricsPort: metricsPort.map(String.init),
                Settings.agentQueues: queues, Settings.agentID: agentID, Settings.redisURL: redisURL, Settings.taskTypes: taskTypes,
            ])
            let configuration = try settings.agentConfiguration()
            let logger = try settings.bootstrapLogging(service: "agent", instance: configuration.agentID)
            let grace = try settings.shutdownGrace()
            let agent = try Agent(configuration: configuration, logger: logger)
            for warning in await agent.durabilityWarnings() { logger.warning("\(warning)") }
            logger.info("agent started", metadata: [
                "queues": "\(configuration.servedQueues.joined(separator: ","))", "concurrency": "\(configuration.concurrency)",
            ])
            try await agent.run(shutdownGracePeriod: grace, leadingServices: LoggingSetup.lokiShipper.map { [$0] } ?? [])
        }
    }
}
