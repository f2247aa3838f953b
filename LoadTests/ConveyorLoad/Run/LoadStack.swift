import ConveyorEmbedded
import Foundation
import Logging
import Synchronization

/// `--embedded`: the whole stack on this machine, as `conveyor dev` runs it, but each part a process of
/// its own so its CPU and memory can be told apart: Redis (AOF, fsync every second), PostgreSQL (fsync
/// on), one `conveyor coordinator` and N `conveyor agent` processes, all with their default settings.
final class LoadStack: Sendable {
    let directory: String
    /// nil when the stack uses a Redis it did not start (`--redis-url`).
    let redis: (any LocalRedis)?
    let postgres: LocalPostgresServer
    let port: Int
    let coordinator: ChildProcess
    /// The agent in each slot now (a restart replaces one).
    var agents: [ChildProcess] { agentSlots.withLock { $0.map(\.process) } }
    private let agentSlots: Mutex<[(process: ChildProcess, restarts: Int)]>
    private let conveyor: String
    private let agentEnvironment: [String: String]
    private let agentConcurrency: Int
    /// The agents' execution journals, one file each (two agents appending to one file would contend
    /// for its lock on every task).
    let journalPaths: [String]
    static let token = "load"

    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// - Parameters:
    ///   - agentConcurrency: CONVEYOR_AGENT_CONCURRENCY of each agent.
    ///   - environment: added to every coordinator and agent's environment (to try a setting).
    ///   - redisURL: a running Redis to use instead of starting one (its keys are left behind).
    ///   - redisCluster: start a Redis Cluster of this many primaries (a replica each) instead of one Redis.
    static func start(
        conveyor: String, agents count: Int, agentConcurrency: Int, redisURL: String?, redisCluster: Int? = nil, environment: [String: String]
    ) async throws -> LoadStack {
        let logger = Logger(label: "conveyor.load", factory: { _ in SwiftLogNoOpLogHandler() })
        let directory = try await LocalProcess.makeDirectory(prefix: "conveyor-load", ownedByPostgres: false)
        async let startedPostgres = LocalPostgresServer.start(durable: true, logger: logger)
        let redis: (any LocalRedis)?
        let postgres: LocalPostgresServer
        do {
            redis = redisURL == nil ? try await LocalRedisLauncher.start(clusterPrimaries: redisCluster, appendOnly: true, logger: logger) : nil
        } catch {
            if let postgres = try? await startedPostgres { await postgres.stop() }
            throw error
        }
        do {
            postgres = try await startedPostgres
        } catch {
            await redis?.stop()
            throw error
        }
        let port = try LocalProcess.freePort()
        let journalPaths = (1...count).map { "\(directory)/executions-\($0).journal" }
        // Per-task info lines are sampled as in `conveyor dev`: at 15,000 tasks a second, one line per
        // task would measure the terminal, not the broker.
        var common = ["CONVEYOR_REDIS_URL": redisURL ?? redis?.url ?? "", "CONVEYOR_LOG_FORMAT": "json", "CONVEYOR_TASK_LOG_SAMPLE": "0.01"]
        common.merge(environment) { _, new in new }
        let coordinatorEnvironment = common.merging([
            "CONVEYOR_POSTGRES_URL": postgres.url, "CONVEYOR_API_TOKENS": token, "CONVEYOR_HTTP_PORT": String(port),
            "CONVEYOR_INSTANCE_ID": "load-coordinator",
        ]) { _, new in new }
        var started: [ChildProcess] = []
        do {
            let migrate = try await ChildProcess.start(
                executable: conveyor, arguments: ["migrate"], workingDirectory: nil, logPath: "\(directory)/migrate.log",
                environment: coordinatorEnvironment)
            let status = await migrate.waitForExit()
            guard status == 0 else { throw LoadError("conveyor migrate failed with status \(status); see \(directory)/migrate.log") }
            let coordinator = try await ChildProcess.start(
                executable: conveyor, arguments: ["coordinator"], workingDirectory: nil, logPath: "\(directory)/coordinator.log",
                environment: coordinatorEnvironment)
            started.append(coordinator)
            var agents: [ChildProcess] = []
            for index in 1...count {
                let agent = try await ChildProcess.start(
                    executable: conveyor, arguments: ["agent"], workingDirectory: nil, logPath: "\(directory)/agent-\(index).log",
                    environment: common.merging([
                        "CONVEYOR_AGENT_ID": "load-agent-\(index)", "CONVEYOR_AGENT_CONCURRENCY": String(agentConcurrency),
                        "CONVEYOR_EXECUTION_JOURNAL": journalPaths[index - 1],
                    ]) { _, new in new })
                started.append(agent)
                agents.append(agent)
            }
            let stack = LoadStack(
                directory: directory, redis: redis, postgres: postgres, port: port, coordinator: coordinator, agents: agents,
                journalPaths: journalPaths, conveyor: conveyor, agentEnvironment: common, agentConcurrency: agentConcurrency)
            try await stack.waitUntilReady()
            return stack
        } catch {
            // Each child runs in a process group of its own: nothing else would stop them.
            for process in started where process.isRunning { process.signal(SIGKILL) }
            await redis?.stop()
            await postgres.stop()
            throw error
        }
    }

    private init(
        directory: String, redis: (any LocalRedis)?, postgres: LocalPostgresServer, port: Int, coordinator: ChildProcess, agents: [ChildProcess],
        journalPaths: [String], conveyor: String, agentEnvironment: [String: String], agentConcurrency: Int
    ) {
        self.directory = directory
        self.redis = redis
        self.postgres = postgres
        self.port = port
        self.coordinator = coordinator
        self.agentSlots = Mutex(agents.map { ($0, 0) })
        self.journalPaths = journalPaths
        self.conveyor = conveyor
        self.agentEnvironment = agentEnvironment
        self.agentConcurrency = agentConcurrency
    }

    /// Stops the agent in `slot` gracefully (SIGTERM: it finishes or hands back what it holds) and starts
    /// a new one under a new id, as a deploy would: the old id's consumer is left for the janitor.
    func restartAgent(slot: Int) async throws {
        let (old, restarts) = agentSlots.withLock { $0[slot] }
        old.signal(SIGTERM)
        let deadline = ContinuousClock.now + .seconds(20)
        while old.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        if old.isRunning { old.signal(SIGKILL) }
        let id = "load-agent-\(slot + 1)-r\(restarts + 1)"
        let agent = try await ChildProcess.start(
            executable: conveyor, arguments: ["agent"], workingDirectory: nil, logPath: "\(directory)/\(id).log",
            environment: agentEnvironment.merging([
                "CONVEYOR_AGENT_ID": id, "CONVEYOR_AGENT_CONCURRENCY": String(agentConcurrency),
                "CONVEYOR_EXECUTION_JOURNAL": journalPaths[slot],
            ]) { _, new in new })
        agentSlots.withLock { $0[slot] = (agent, restarts + 1) }
    }

    /// Waits until the coordinator answers `/ready` (PostgreSQL and Redis reachable, migrations applied).
    private func waitUntilReady() async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            guard coordinator.isRunning else {
                throw LoadError("the coordinator exited at start; see \(directory)/coordinator.log")
            }
            if await CoordinatorReadiness.isReady(baseURL) { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw LoadError("the coordinator did not answer /ready within 30 s; see \(directory)/coordinator.log")
    }

    /// The processes to watch, by name: the coordinator, each agent, Redis and PostgreSQL (its postmaster;
    /// the sampler adds its backends).
    var watched: [WatchedProcess] {
        var list = [WatchedProcess(name: "coordinator", pid: coordinator.pid, includeChildren: false)]
        for (index, agent) in agents.enumerated() {
            list.append(WatchedProcess(name: "agent-\(index + 1)", pid: agent.pid, includeChildren: false))
        }
        for (name, pid) in redis?.processes ?? [] { list.append(WatchedProcess(name: name, pid: pid, includeChildren: false)) }
        if let postmaster = postgresPID { list.append(WatchedProcess(name: "postgres (all processes)", pid: postmaster, includeChildren: true)) }
        list.append(WatchedProcess(name: LoadReport.loadGeneratorName, pid: getpid(), includeChildren: false))
        return list
    }

    /// The postmaster's pid: the first line of `postmaster.pid` in the data folder.
    private var postgresPID: pid_t? {
        let candidates = ["\(postgres.directory)/data/postmaster.pid", "\(postgres.directory)/postmaster.pid"]
        for path in candidates {
            if let text = try? String(contentsOfFile: path, encoding: .utf8), let first = text.split(separator: "\n").first, let pid = pid_t(first) {
                return pid
            }
        }
        return nil
    }

    /// Stops the coordinator and agents gracefully (SIGTERM), then the servers; removes the folder unless `keep`.
    func shutdown(keep: Bool) async {
        for process in agents + [coordinator] where process.isRunning { process.signal(SIGTERM) }
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline, (agents + [coordinator]).contains(where: \.isRunning) {
            try? await Task.sleep(for: .milliseconds(50))
        }
        for process in agents + [coordinator] where process.isRunning { process.signal(SIGKILL) }
        await redis?.stop(removeDirectory: !keep)
        await postgres.stop(removeDirectory: !keep)
        if !keep { try? FileManager.default.removeItem(atPath: directory) }
    }
}

struct LoadError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
