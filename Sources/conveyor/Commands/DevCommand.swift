import ArgumentParser
import AsyncHTTPClient
import ConveyorAgent
import ConveyorConfiguration
import ConveyorCoordinator
import ConveyorCore
import ConveyorObservability
import ConveyorEmbedded
import ConveyorPostgres
import ConveyorRedis
import Foundation
import Logging
import ServiceLifecycle

struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "The embedded default: throwaway Redis and PostgreSQL, a coordinator and agents, and a demo load.",
        discussion: """
            Starts redis-server (AOF, fsync every second) and PostgreSQL from the machine's binaries in a temp \
            folder, applies migrations, runs a coordinator and N agents in this process, submits the demo load \
            and prints how it went. Ctrl-C stops everything and removes the temp folders.
            """)

    @Option(help: "Number of agents.") var agents: Int = 2
    @Option(help: "Concurrency of each agent.") var concurrency: Int = 64
    @Option(help: "Port of the coordinator's HTTP API (0 picks a free one).") var port: Int = 8080
    @Option(help: "Noop tasks submitted as the demo load (0 for none).") var demoTasks: Int = 1000
    @Option(help: "Tasks per request of the demo load: 1 uses POST /v1/tasks, more uses /v1/tasks/batch.") var demoBatch: Int = 1
    @Option(help: "Concurrent requests of the demo load.") var demoConcurrency: Int = 32
    @Flag(help: "Stop after the demo load instead of waiting for Ctrl-C.") var exitAfterDemo = false
    @Option(help: "Run on a Redis Cluster of this many primaries (a replica each) instead of one Redis.") var redisCluster: Int?

    func validate() throws {
        guard (1...64).contains(agents) else { throw ValidationError("--agents must be 1–64") }
        guard demoTasks >= 0 else { throw ValidationError("--demo-tasks must not be negative") }
        guard (1...CoordinatorConfiguration.maxBatchTasks).contains(demoBatch) else { throw ValidationError("--demo-batch must be 1–1000") }
        guard demoConcurrency > 0 else { throw ValidationError("--demo-concurrency must be positive") }
        if let redisCluster, !(3...9).contains(redisCluster) { throw ValidationError("--redis-cluster must be 3–9 primaries (a Redis Cluster needs at least 3)") }
    }

    func run() async throws {
        try await reportingConfigurationErrors {
            let settings = SettingsReader()
            let logger = try settings.bootstrapLogging(service: "dev", instance: "dev")
            // The demo submits thousands of tasks: show a sample of their lines unless asked otherwise.
            if settings.string(Settings.taskLogSample) == nil { TaskLogSampling.configure(fraction: 0.01) }
            let registry = try settings.registry()
            // What an operator would try on the embedded stack: how long work is kept and Redis tidied.
            let upkeep = Upkeep(
                retention: try settings.duration(Settings.retention, default: CoordinatorConfiguration.defaultRetention),
                deadLetterLimit: try settings.int(Settings.deadLetterLimit, default: 10_000, range: 1...100_000_000)!,
                idleConsumerAfter: try settings.duration(Settings.idleConsumerAfter, default: .seconds(900)),
                webhookHosts: settings.webhookHosts(),
                webhookSecret: settings.string(Settings.webhookSecret))
            print("conveyor dev: starting \(redisCluster.map { "a Redis Cluster (\($0) primaries, a replica each)" } ?? "Redis") and PostgreSQL in a temp folder…")
            let redis: any LocalRedis
            let postgres: LocalPostgresServer
            do {
                redis = try await LocalRedisLauncher.start(clusterPrimaries: redisCluster, appendOnly: true, logger: logger)
            } catch {
                throw LocalServerFailure(message: "\(error)")
            }
            do {
                postgres = try await LocalPostgresServer.start(durable: true, logger: logger)
            } catch {
                await redis.stop()
                throw LocalServerFailure(message: "\(error)")
            }
            do {
                try await runStack(redis: redis, postgres: postgres, registry: registry, upkeep: upkeep, logger: logger)
            } catch {
                await postgres.stop()
                await redis.stop()
                throw error
            }
            await postgres.stop()
            await redis.stop()
            print("conveyor dev: stopped; temp folders removed.")
        }
    }

    /// The coordinator settings `conveyor dev` takes from the environment.
    private struct Upkeep {
        var retention: Duration
        var deadLetterLimit: Int
        var idleConsumerAfter: Duration
        /// Webhooks work on the embedded stack too when CONVEYOR_WEBHOOK_HOSTS and _SECRET are set.
        var webhookHosts: WebhookHostPolicy
        var webhookSecret: String?
    }

    private func runStack(redis: any LocalRedis, postgres: LocalPostgresServer, registry: TaskTypeRegistry, upkeep: Upkeep, logger: Logger) async throws {
        let token = "dev-" + CorrelationID.make().prefix(16)
        var configuration = CoordinatorConfiguration(
            redis: try RedisConfiguration(url: redis.url), postgres: try PostgresConfiguration(url: postgres.url, poolSize: 4),
            instanceID: "dev-coordinator")
        configuration.port = port
        configuration.apiTokens = [APIToken(name: "dev", scopes: [.admin], secret: token)]
        configuration.registry = registry
        configuration.retention = upkeep.retention
        configuration.deadLetterLimit = upkeep.deadLetterLimit
        configuration.idleConsumerAfter = upkeep.idleConsumerAfter
        configuration.webhookHosts = upkeep.webhookHosts
        configuration.webhookSecret = upkeep.webhookSecret
        try configuration.validate()
        let coordinator = Coordinator(configuration: configuration, logger: logger)
        defer { coordinator.close() }
        try await coordinator.migrate()

        var agentList: [Agent] = []
        for index in 1...agents {
            var agentConfiguration = AgentConfiguration(agentID: "dev-agent-\(index)", redis: configuration.redis)
            agentConfiguration.concurrency = concurrency
            agentConfiguration.registry = registry
            agentList.append(try Agent(configuration: agentConfiguration, logger: logger))
        }
        defer { for agent in agentList { agent.close() } }

        let listening = Promise<Int>()
        let app = try coordinator.makeApplication { port in listening.succeed(port) }
        let demo = DemoLoad(
            listening: listening, token: token, tasks: demoTasks, batch: demoBatch, concurrency: demoConcurrency,
            store: coordinator.store, redisURL: redis.url, postgresURL: postgres.url, agents: agents, exitAfterDemo: exitAfterDemo)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: app)]
        for agent in agentList { services.append(contentsOf: agent.services.map { .init(service: $0) }) }
        // The demo ending (after --exit-after-demo) shuts the whole stack down gracefully.
        services.append(.init(service: demo, successTerminationBehavior: .gracefullyShutdownGroup))
        var group = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = .seconds(30)
        group.maximumCancellationDuration = .seconds(10)
        try await ServiceGroup(configuration: group).run()
    }
}

/// Prints where everything is, submits the demo load over HTTP, waits until PostgreSQL shows every task
/// terminal, and prints the outcome. Then waits for Ctrl-C (or ends the group with `--exit-after-demo`).
struct DemoLoad: Service {
    let listening: Promise<Int>
    let token: String
    let tasks: Int
    let batch: Int
    let concurrency: Int
    let store: TaskStore
    let redisURL: String
    let postgresURL: String
    let agents: Int
    let exitAfterDemo: Bool

    func run() async throws {
        let port = try await listening.value
        let base = "http://127.0.0.1:\(port)"
        print("""
            conveyor dev: ready
              API         \(base)   (token: \(token))
              Redis       \(redisURL)
              PostgreSQL  \(postgresURL)
              agents      \(agents)
            """)
        // Into a pipe or a file, stdout is block-buffered: the banner (with the token) must show now.
        fflush(nil)
        if tasks > 0 {
            // One connection per concurrent request: the client's default of 8 would cap the load.
            var httpConfiguration = HTTPClient.Configuration()
            httpConfiguration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency)
            let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfiguration)
            do {
                try await submitAndReport(APIClient(baseURL: base, token: token, http: http))
            } catch {
                print("conveyor dev: demo load failed: \(error)")
            }
            try? await http.shutdown()
        }
        print("""

            Try it:
              curl -s -X POST \(base)/v1/tasks -H 'Authorization: Bearer \(token)' -H 'Content-Type: application/json' -d '{"type":"echo","params":{"hello":"world"}}'
              curl -s \(base)/v1/tasks/1 -H 'Authorization: Bearer \(token)'
              curl -s \(base)/status
            """)
        if exitAfterDemo { return }
        print("Press Ctrl-C to stop.")
        try? await gracefulShutdown()
    }

    private func submitAndReport(_ client: APIClient) async throws {
        let startedAt = WallClock.nowMillis()
        let clock = ContinuousClock()
        let start = clock.now
        let requests = (tasks + batch - 1) / batch
        let next = Counter()
        let failures = Counter()
        let body = batch == 1
            ? "{\"type\":\"noop\"}"
            : "{\"tasks\":[" + Array(repeating: "{\"type\":\"noop\"}", count: batch).joined(separator: ",") + "]}"
        let path = batch == 1 ? "/v1/tasks" : "/v1/tasks/batch"
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<min(concurrency, requests) {
                group.addTask {
                    while next.increment() <= requests {
                        let reply = try? await client.post(path, json: body)
                        if reply?.status != 201 { _ = failures.increment() }
                    }
                }
            }
        }
        let submitSeconds = Double((clock.now - start).milliseconds) / 1000
        let accepted = (requests - failures.value) * batch
        print(String(format: "conveyor dev: submitted %d noop tasks in %.2f s (%.0f tasks/s), %d requests failed", accepted, submitSeconds, Double(accepted) / max(submitSeconds, 0.001), failures.value))
        var counts: [TaskStatus: Int] = [:]
        for _ in 0..<600 {
            counts = try await store.countByStatus(sinceMillis: startedAt)
            let terminal = counts.filter { $0.key.isTerminal }.values.reduce(0, +)
            if terminal >= accepted { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let totalSeconds = Double((clock.now - start).milliseconds) / 1000
        let succeeded = counts[.succeeded] ?? 0
        print(String(format: "conveyor dev: %d of %d succeeded, all recorded in PostgreSQL %.2f s after the first submission (%.0f tasks/s end to end)", succeeded, accepted, totalSeconds, Double(succeeded) / max(totalSeconds, 0.001)))
        let others = counts.filter { $0.key != .succeeded && $0.value > 0 }.map { "\($0.key.rawValue)=\($0.value)" }.sorted()
        if !others.isEmpty { print("conveyor dev: other statuses: \(others.joined(separator: ", "))") }
    }
}

/// A shared counter for the demo's request loops.
final class Counter: Sendable {
    private let storage = Mutex(0)
    func increment() -> Int { storage.withLock { $0 += 1; return $0 } }
    var value: Int { storage.withLock { $0 } }
}

import Synchronization
