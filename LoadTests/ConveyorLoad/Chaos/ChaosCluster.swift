import ConveyorEmbedded
import ConveyorRedis
import Foundation
import Logging
import Synchronization

/// The cluster under test: its own Redis (AOF; or a Redis Cluster of several primaries with a replica
/// each) and PostgreSQL, two coordinators (so the Reconciler's leader lock changes hands when one dies)
/// and several agents, each a real `conveyor` process that can be SIGKILLed and started again.
final class ChaosCluster: Sendable {
    let directory: String
    let conveyor: String
    /// The coordinators' HTTP ports, one per slot.
    let ports: [Int]
    let postgres: LocalPostgresServer
    let journalPath: String
    private let registryPath: String
    /// One Redis (nil on a cluster); replaced when restarted.
    private let redisServer: Mutex<LocalRedisServer?>
    /// The Redis Cluster, whose faults hit one shard: the one serving the `emails` queue.
    private let redisCluster: LocalRedisCluster?
    private let coordinators = Mutex<[Int: (process: ChildProcess, generation: Int)]>([:])
    private let agentProcesses = Mutex<[String: ChildProcess]>([:])
    private let logger = Logger(label: "conveyor.chaos", factory: { _ in SwiftLogNoOpLogHandler() })

    static let token = "chaos"
    static let coordinatorSlots = 2

    /// Task types with short leases and backoffs, so a crash costs seconds, and enough attempts that
    /// repeated kills do not dead-letter a healthy task. `remote` runs on the HTTP push handler against
    /// the run's worker at `workerURL`; the schedule `chaos_tick` enqueues a noop task every second.
    /// On a Redis Cluster the types use three queues, one on each primary of a three-primary cluster.
    static func registry(workerURL: String, clustered: Bool = false) -> String {
        let text = """
        schedules:
          chaos_tick:
            cron: "* * * * * *"
            type: noop
        types:
          remote:
            handler: http
            url: \(workerURL)
            max_concurrent: 64
            max_attempts: 10
            timeout: 10s
            lease: 3s
            backoff_base: 100ms
            backoff_max: 500ms
          noop:
            handler: noop
            max_concurrent: 64
            max_attempts: 10
            lease: 3s
            backoff_base: 100ms
            backoff_max: 500ms
          limited:
            handler: sleep
            max_concurrent: 3
            rate_limit: 100/s burst 10
            per_key:
              max_concurrent: 1
            max_attempts: 10
            timeout: 30s
            lease: 3s
            backoff_base: 100ms
            backoff_max: 500ms
          sleep:
            handler: sleep
            max_concurrent: 64
            max_attempts: 10
            timeout: 30s
            lease: 3s
            backoff_base: 100ms
            backoff_max: 500ms
          steps:
            handler: steps
            max_concurrent: 64
            max_attempts: 10
            timeout: 30s
            lease: 3s
            backoff_base: 100ms
            backoff_max: 500ms
          fail-once:
            handler: fail
            max_concurrent: 64
            max_attempts: 10
            lease: 3s
            backoff_base: 100ms
            backoff_max: 500ms
        """
        guard clustered else { return text }
        let queues = ["remote": "emails", "limited": "billing", "sleep": "emails", "steps": "billing"]
        var lines: [String] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lines.append(String(line))
            let name = line.trimmingCharacters(in: .whitespaces).dropLast()
            if line.hasPrefix("  ") && !line.hasPrefix("    ") && line.hasSuffix(":"), let queue = queues[String(name)] {
                lines.append("    queue: \(queue)")
            }
        }
        return lines.joined(separator: "\n")
    }

    /// - Parameter redisCluster: run on a Redis Cluster of this many primaries instead of one Redis.
    static func start(conveyor: String, workerURL: String, redisCluster: Int? = nil) async throws -> ChaosCluster {
        let directory = try await LocalProcess.makeDirectory(prefix: "conveyor-chaos", ownedByPostgres: false)
        let logger = Logger(label: "conveyor.chaos", factory: { _ in SwiftLogNoOpLogHandler() })
        async let postgres = LocalPostgresServer.start(durable: true, logger: logger)
        var server: LocalRedisServer?
        var nodes: LocalRedisCluster?
        if let redisCluster {
            nodes = try await LocalRedisCluster.start(primaries: redisCluster, replicas: 1, appendOnly: true, logger: logger)
        } else {
            server = try await LocalRedisServer.start(appendOnly: true, logger: logger)
        }
        let cluster = ChaosCluster(
            directory: directory, conveyor: conveyor, ports: try (0..<coordinatorSlots).map { _ in try LocalProcess.freePort() },
            redisServer: server, redisCluster: nodes, postgres: try await postgres)
        try registry(workerURL: workerURL, clustered: redisCluster != nil).write(toFile: cluster.registryPath, atomically: true, encoding: .utf8)
        let migrate = try await ChildProcess.start(
            executable: conveyor, arguments: ["migrate"], workingDirectory: nil, logPath: "\(directory)/migrate.log",
            environment: cluster.coordinatorEnvironment(slot: 0, generation: 0, fault: nil))
        let status = await migrate.waitForExit()
        guard status == 0 else { throw ChaosError("conveyor migrate failed with status \(status); see \(directory)/migrate.log") }
        return cluster
    }

    private init(
        directory: String, conveyor: String, ports: [Int], redisServer: LocalRedisServer?, redisCluster: LocalRedisCluster?, postgres: LocalPostgresServer
    ) {
        self.directory = directory
        self.conveyor = conveyor
        self.ports = ports
        self.redisServer = Mutex(redisServer)
        self.redisCluster = redisCluster
        self.postgres = postgres
        self.registryPath = "\(directory)/task-types.yaml"
        self.journalPath = "\(directory)/executions.journal"
    }

    var redisURL: String { redisCluster?.url ?? redisServer.withLock { $0?.url ?? "" } }

    /// Whether Redis is a Redis Cluster.
    var isRedisCluster: Bool { redisCluster != nil }
    var baseURLs: [String] { ports.map { "http://127.0.0.1:\($0)" } }

    /// Each generation gets an instance id of its own, as a replacement host would: the events a dead
    /// generation left pending are then recorded by the next one's takeover (after 5 s), not by a
    /// restart under the same name.
    private func coordinatorEnvironment(slot: Int, generation: Int, fault: String?) -> [String: String] {
        var environment = [
            "CONVEYOR_REDIS_URL": redisURL, "CONVEYOR_POSTGRES_URL": postgres.url, "CONVEYOR_TASK_TYPES": registryPath,
            "CONVEYOR_API_TOKENS": Self.token, "CONVEYOR_HTTP_PORT": String(ports[slot]), "CONVEYOR_INSTANCE_ID": "chaos-coordinator-\(slot)-g\(generation)",
            "CONVEYOR_RECORDER_TAKEOVER_AFTER": "5s",
            // The least Submitter queue allowed (one batch request's worth), so the overload bursts shed.
            "CONVEYOR_SUBMIT_QUEUE_MAX": "1000",
            // A generation of partitions opens every 13 s, so the run crosses openings (ids jump, tables
            // attach) while processes die; none is closed long enough (90 s + 1 min) to be dropped before
            // the census of a run that ends in time (the soak proves the drops; a drop that came early
            // would show as missing rows, never pass silently). The janitor removes killed agents'
            // consumers once reclaimed.
            "CONVEYOR_RETENTION": "90s", "CONVEYOR_IDLE_CONSUMER_AFTER": "10s", "CONVEYOR_DEAD_LETTER_LIMIT": "20",
            "CONVEYOR_RECONCILE_INTERVAL": "1s", "CONVEYOR_RECONCILE_SWEEP": "10s", "CONVEYOR_DISPATCH_GRACE": "3s", "CONVEYOR_SHUTDOWN_GRACE": "5s",
            "CONVEYOR_LOG_FORMAT": "json", "CONVEYOR_LOG_LEVEL": "notice",
            // Webhooks to the run's receiver; a short timeout, so a delivery a killed coordinator had
            // claimed is sent again within seconds.
            "CONVEYOR_WEBHOOK_HOSTS": "127.0.0.1", "CONVEYOR_WEBHOOK_SECRET": WebhookReceiver.secret, "CONVEYOR_WEBHOOK_TIMEOUT": "2s",
        ]
        environment["CONVEYOR_FAULT"] = fault ?? ""
        return environment
    }

    // MARK: - Coordinator

    /// Starts generation `generation` of the coordinator in `slot`, armed with `fault` (a CONVEYOR_FAULT
    /// value) if any.
    func startCoordinator(slot: Int, generation: Int, fault: String?) async throws {
        let process = try await ChildProcess.start(
            executable: conveyor, arguments: ["coordinator"], workingDirectory: nil,
            logPath: "\(directory)/coordinator-\(slot)-g\(generation).log",
            environment: coordinatorEnvironment(slot: slot, generation: generation, fault: fault))
        coordinators.withLock { $0[slot] = (process, generation) }
    }

    /// Whether the coordinator in `slot` runs.
    func coordinatorRuns(_ slot: Int) -> Bool {
        coordinators.withLock { $0[slot]?.process.isRunning ?? false }
    }

    /// The last generation started in `slot` (-1 before the first).
    func lastGeneration(_ slot: Int) -> Int { coordinators.withLock { $0[slot]?.generation ?? -1 } }

    func killCoordinator(_ slot: Int) {
        coordinators.withLock { coordinators in
            guard let process = coordinators[slot]?.process, process.isRunning else { return }
            process.signal(SIGKILL)
        }
    }

    // MARK: - Agents

    func startAgent(id: String, fault: String?) async throws {
        let environment = [
            "CONVEYOR_REDIS_URL": redisURL, "CONVEYOR_TASK_TYPES": registryPath, "CONVEYOR_AGENT_ID": id,
            "CONVEYOR_AGENT_CONCURRENCY": "64", "CONVEYOR_EXECUTION_JOURNAL": journalPath, "CONVEYOR_FAULT": fault ?? "",
            "CONVEYOR_SHUTDOWN_GRACE": "5s", "CONVEYOR_LOG_FORMAT": "json", "CONVEYOR_LOG_LEVEL": "notice",
        ]
        let process = try await ChildProcess.start(
            executable: conveyor, arguments: ["agent"], workingDirectory: nil, logPath: "\(directory)/agent-\(id).log",
            environment: environment)
        agentProcesses.withLock { $0[id] = process }
    }

    /// Ids of agents whose process has exited (crashed at a fault point, or killed).
    var exitedAgents: [String] {
        agentProcesses.withLock { agents in agents.filter { !$0.value.isRunning }.map(\.key).sorted() }
    }

    var runningAgents: [String] {
        agentProcesses.withLock { agents in agents.filter { $0.value.isRunning }.map(\.key).sorted() }
    }

    func forgetAgent(_ id: String) {
        _ = agentProcesses.withLock { $0.removeValue(forKey: id) }
    }

    func killAgent(_ id: String) {
        agentProcesses.withLock { agents in
            if let process = agents[id], process.isRunning { process.signal(SIGKILL) }
        }
    }

    // MARK: - Redis and PostgreSQL

    /// The queue whose shard a Redis Cluster's faults hit.
    private static let victimQueue = "emails"

    private let killedNodes = Mutex<[Int]>([])
    private let frozenNode = Mutex<LocalRedisServer?>(nil)

    /// SIGKILLs Redis; on a cluster the primary serving `emails` (its replica takes over), or with
    /// `wholeShard` that primary and its replicas (the shard is gone until restarted).
    func killRedis(wholeShard: Bool = false) async throws {
        guard let cluster = redisCluster else {
            redisServer.withLock { $0?.kill() }
            return
        }
        let shard = try await cluster.shard(ofSlot: HashSlot.of(Self.victimQueue))
        let victims = wholeShard ? shard : [shard[0]]
        for port in victims { cluster.kill(port: port) }
        killedNodes.withLock { $0 = victims }
    }

    /// Starts Redis again on the same port from the same folder, so it loads its AOF; or, with `wipe`,
    /// without its data, as a replaced Redis host would come back. On a cluster the killed nodes come
    /// back (a killed primary as its successor's replica; a whole shard as itself, empty with `wipe`).
    func restartRedis(wipe: Bool = false) async throws {
        guard let cluster = redisCluster else {
            guard let old = redisServer.withLock({ $0 }) else { return }
            for _ in 0..<100 where old.isRunning { try await Task.sleep(for: .milliseconds(20)) }
            if wipe {
                let files = (try? FileManager.default.contentsOfDirectory(atPath: old.directory)) ?? []
                for file in files where file.hasPrefix("appendonly") || file.hasSuffix(".rdb") {
                    try FileManager.default.removeItem(atPath: "\(old.directory)/\(file)")
                }
            }
            let restarted = try await LocalRedisServer.start(appendOnly: true, port: old.port, directory: old.directory, logger: logger)
            redisServer.withLock { $0 = restarted }
            return
        }
        let killed = killedNodes.withLock { $0 }
        for port in killed { try await cluster.restart(port: port, keepingData: !wipe) }
    }

    /// Freezes Redis; on a cluster the primary serving `emails`, which its replica replaces if the
    /// freeze outlasts the cluster's node timeout.
    func freezeRedis() async {
        guard let cluster = redisCluster else {
            redisServer.withLock { $0 }?.freeze()
            return
        }
        guard let port = try? await cluster.shard(ofSlot: HashSlot.of(Self.victimQueue))[0], let node = cluster.server(port: port) else { return }
        frozenNode.withLock { $0 = node }
        node.freeze()
    }

    func thawRedis() {
        if redisCluster == nil { redisServer.withLock { $0 }?.thaw() } else { frozenNode.withLock { $0 }?.thaw() }
    }

    func freezePostgres() { postgres.freeze() }
    func thawPostgres() { postgres.thaw() }

    func crashPostgres() async {
        await postgres.crash()
    }

    func startPostgres() async throws {
        try await postgres.start(logger: logger)
    }

    /// Stops every process and server; removes the folder unless `keep`.
    func shutdown(keep: Bool) async {
        for slot in 0..<Self.coordinatorSlots { killCoordinator(slot) }
        agentProcesses.withLock { agents in
            for process in agents.values where process.isRunning { process.signal(SIGKILL) }
        }
        await redisServer.withLock { $0 }?.stop(removeDirectory: !keep)
        await redisCluster?.stop(removeDirectory: !keep)
        await postgres.stop(removeDirectory: !keep)
        if !keep { try? FileManager.default.removeItem(atPath: directory) }
    }
}

struct ChaosError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
