import ConveyorEmbedded
import Foundation

/// A real `conveyor agent` process (the debug binary `swift build` made) serving the stack's Redis, so a
/// test can SIGKILL it: a crash no in-process agent can fake.
struct AgentProcess {
    let process: ChildProcess
    /// Its folder: the registry, its log and its execution journal.
    let directory: String
    /// One line per attempt started (and ended, for limited types).
    var journal: String { "\(directory)/executions.journal" }

    static let binary = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/debug/conveyor").path

    static var isBuilt: Bool { FileManager.default.isExecutableFile(atPath: binary) }

    /// Starts the agent `id` with `registryYAML` as its task types.
    static func start(on stack: Stack, id: String, registryYAML: String) async throws -> AgentProcess {
        let directory = try await LocalProcess.makeDirectory(prefix: "conveyor-\(id)", ownedByPostgres: false)
        try registryYAML.write(toFile: "\(directory)/types.yaml", atomically: true, encoding: .utf8)
        let process = try await ChildProcess.start(
            executable: binary, arguments: ["agent"], workingDirectory: nil, logPath: "\(directory)/agent.log",
            environment: [
                "CONVEYOR_REDIS_URL": stack.environment.redisServer.url, "CONVEYOR_REDIS_PREFIX": stack.environment.keys.prefix,
                "CONVEYOR_TASK_TYPES": "\(directory)/types.yaml", "CONVEYOR_AGENT_ID": id,
                "CONVEYOR_EXECUTION_JOURNAL": "\(directory)/executions.journal",
            ])
        return AgentProcess(process: process, directory: directory)
    }

    /// Kills it if it still runs and removes its folder.
    func cleanUp() {
        if process.isRunning { process.signal(SIGKILL) }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
