import Testing
import AsyncHTTPClient
import ConveyorAgent
import ConveyorCoordinator
import ConveyorCore
import ConveyorPostgres
import ConveyorRedis
import ConveyorTesting
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle

/// A coordinator and agents running for real against the test process's Redis and PostgreSQL, in one
/// ServiceGroup, with an HTTP client pointed at the coordinator.
final class Stack: Sendable {
    let environment: TestEnvironment
    let coordinator: Coordinator
    let agents: [Agent]
    let baseURL: String
    let token = "test-token"
    private let group: ServiceGroup
    private let running: Task<Void, any Error>

    static func start(
        registry: TaskTypeRegistry = .builtIn, agents agentCount: Int = 1, concurrency: Int = 64,
        handlers: HandlerSet = .builtIns, migrate: Bool = true, redis topology: RedisTopology = .single, environment given: TestEnvironment? = nil,
        coordinatorClock: any Clock<Duration> = ContinuousClock(), configure: (inout CoordinatorConfiguration) -> Void = { _ in },
        configureAgent: (inout AgentConfiguration) -> Void = { _ in }
    ) async throws -> Stack {
        let environment = if let given { given } else { try await TestServers.shared.environment(name: "stack", redisCluster: topology == .cluster) }
        let logger = TestServers.logger("conveyor.test.stack")
        var configuration = CoordinatorConfiguration(redis: environment.redis, postgres: environment.postgres, instanceID: "test-coordinator")
        configuration.port = 0
        configuration.apiTokens = [APIToken(name: "test", scopes: [.admin], secret: "test-token")]
        configuration.registry = registry
        configuration.keys = environment.keys
        configure(&configuration)
        let coordinator = Coordinator(configuration: configuration, clock: coordinatorClock, logger: logger)
        if migrate { try await coordinator.migrate() }
        var agents: [Agent] = []
        for index in 0..<agentCount {
            var agentConfiguration = AgentConfiguration(agentID: "agent-\(index)", redis: environment.redis)
            agentConfiguration.registry = registry
            agentConfiguration.keys = environment.keys
            agentConfiguration.concurrency = concurrency
            agentConfiguration.heartbeatInterval = .milliseconds(200)
            agentConfiguration.readBlock = .milliseconds(200)
            configureAgent(&agentConfiguration)
            agents.append(try Agent(configuration: agentConfiguration, handlers: handlers, logger: logger))
        }
        let listening = Promise<Int>()
        let app = try coordinator.makeApplication { port in listening.succeed(port) }
        var services: [any Service] = [app]
        for agent in agents { services.append(contentsOf: agent.services) }
        var groupConfiguration = ServiceGroupConfiguration(services: services, logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(20)
        let group = ServiceGroup(configuration: groupConfiguration)
        let running = Task { try await group.run() }
        let port = try await listening.value
        return Stack(environment: environment, coordinator: coordinator, agents: agents, baseURL: "http://127.0.0.1:\(port)", group: group, running: running)
    }

    private init(environment: TestEnvironment, coordinator: Coordinator, agents: [Agent], baseURL: String, group: ServiceGroup, running: Task<Void, any Error>) {
        self.environment = environment
        self.coordinator = coordinator
        self.agents = agents
        self.baseURL = baseURL
        self.group = group
        self.running = running
    }

    /// Starts one more agent in a group of its own, so a test can crash it alone.
    func startAgent(
        id: String, registry: TaskTypeRegistry, handlers: HandlerSet, shutdownDeadline: Duration? = nil, metricsPort: Int? = nil,
        concurrency: Int = 64
    ) throws -> RunningAgent {
        var configuration = AgentConfiguration(agentID: id, redis: environment.redis)
        configuration.concurrency = concurrency
        configuration.metricsPort = metricsPort
        configuration.registry = registry
        configuration.keys = environment.keys
        configuration.readBlock = .milliseconds(200)
        configuration.heartbeatInterval = .milliseconds(200)
        let agent = try Agent(configuration: configuration, handlers: handlers, logger: TestServers.logger("conveyor.test.agent"))
        var groupConfiguration = ServiceGroupConfiguration(services: agent.services, logger: TestServers.quietLogger)
        groupConfiguration.maximumGracefulShutdownDuration = shutdownDeadline
        let group = ServiceGroup(configuration: groupConfiguration)
        return RunningAgent(agent: agent, group: group, running: Task { try await group.run() })
    }

    /// Graceful shutdown of everything, then the connections' threads.
    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await running.value
        coordinator.close()
        for agent in agents { agent.close() }
    }

    // MARK: - HTTP

    struct Reply: Sendable {
        var status: Int
        var body: String
        var headers: HTTPHeaders
        var json: JSONValue? { try? JSONValue.parse(body) }
    }

    func request(
        _ method: HTTPMethod, _ path: String, body: String? = nil, token: String? = "test-token", headers: [(String, String)] = [],
        timeout: Duration = .seconds(60)
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .milliseconds(timeout.milliseconds))
        let buffer = try await response.body.collect(upTo: 64 << 20)
        return Reply(status: Int(response.status.code), body: String(buffer: buffer), headers: response.headers)
    }

    func post(_ path: String, _ body: String, headers: [(String, String)] = [], timeout: Duration = .seconds(60)) async throws -> Reply {
        try await request(.POST, path, body: body, headers: headers, timeout: timeout)
    }

    /// Posts as a client told to come back does: a 503 (Redis or PostgreSQL did not answer in time, as
    /// when a loaded CI machine stalls every test's Redis for a second or two) is retried after its
    /// `Retry-After`, for up to `patience`; any other reply is returned as it is.
    func postRetryingUnavailable(_ path: String, _ body: String, patience: Duration = .seconds(20)) async throws -> Reply {
        let deadline = ContinuousClock.now + patience
        while true {
            let reply = try await post(path, body)
            guard reply.status == 503, ContinuousClock.now < deadline else { return reply }
            let wait = reply.headers.first(name: "Retry-After").flatMap { Int($0) } ?? 1
            try await Task.sleep(for: .seconds(min(max(wait, 1), 5)))
        }
    }

    func get(_ path: String) async throws -> Reply {
        try await request(.GET, path)
    }

    /// Submits one task and returns its id (fails the test unless the reply is 201).
    func submit(_ type: String, params: String = "{}", extra: String = "") async throws -> Int64 {
        let reply = try await post("/v1/tasks", "{\"type\":\"\(type)\",\"params\":\(params)\(extra)}")
        guard reply.status == 201, let id = reply.json?["id"]?.intValue else {
            throw StackError("submit \(type) got \(reply.status): \(reply.body)")
        }
        return id
    }

    /// The stored task as JSON.
    func task(_ id: Int64) async throws -> JSONValue {
        let reply = try await get("/v1/tasks/\(id)")
        guard reply.status == 200, let json = reply.json else { throw StackError("GET task \(id) got \(reply.status): \(reply.body)") }
        return json
    }

    /// Waits until every task in `ids` is terminal in PostgreSQL; returns their statuses.
    func waitUntilTerminal(_ ids: [Int64], timeout: Duration = .seconds(60)) async throws -> [Int64: TaskStatus] {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        let literal = PostgresArrayLiteral.integers(ids)
        while true {
            // PostgreSQL may be coming back from an outage the test caused: a failed read is retried.
            let rows = (try? await coordinator.postgres.withSession { session in
                try session.query("SELECT id, status FROM tasks WHERE id = ANY($1::bigint[])", [literal]).rows
            }) ?? []
            var statuses: [Int64: TaskStatus] = [:]
            for row in rows {
                if let id = row[0].flatMap({ Int64($0) }), let status = row[1].flatMap(TaskStatus.init(rawValue:)) { statuses[id] = status }
            }
            if statuses.count == ids.count, statuses.values.allSatisfy(\.isTerminal) { return statuses }
            if ContinuousClock.now > deadline {
                let waiting = statuses.filter { !$0.value.isTerminal }.count + (ids.count - statuses.count)
                throw StackError("\(waiting) of \(ids.count) tasks not terminal after \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

/// An agent running in its own ServiceGroup.
struct RunningAgent: Sendable {
    let agent: Agent
    let group: ServiceGroup
    let running: Task<Void, any Error>

    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await running.value
        agent.close()
    }
}

struct StackError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Counts executions per task id and the most handlers running at once, from inside a handler.
final class ExecutionLog: Sendable {
    private struct State {
        var executions: [Int64: Int] = [:]
        var running = 0
        var maxRunning = 0
    }

    private let state = Mutex(State())

    func begin(_ id: TaskID) {
        state.withLock { state in
            state.executions[id.rawValue, default: 0] += 1
            state.running += 1
            state.maxRunning = max(state.maxRunning, state.running)
        }
    }

    func end() { state.withLock { $0.running -= 1 } }

    var executions: [Int64: Int] { state.withLock { $0.executions } }
    var running: Int { state.withLock { $0.running } }
    var maxRunning: Int { state.withLock { $0.maxRunning } }

    /// A handler that records itself here and then sleeps `sleep`.
    func handler(sleep: Duration = .zero) -> some TaskHandler {
        ClosureHandler { [self] task in
            begin(task.id)
            defer { end() }
            if sleep > .zero { try await Task.sleep(for: sleep) }
            return nil
        }
    }
}

import Synchronization

/// What a stack's Redis is: one server, or the shared Redis Cluster (3 primaries, a replica each).
enum RedisTopology: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case single, cluster

    var testDescription: String { self == .single ? "one Redis" : "a Redis Cluster" }
}
