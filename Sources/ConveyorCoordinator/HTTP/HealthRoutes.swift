import ConveyorCore
import ConveyorPostgres
import ConveyorRedis
import Foundation
import Hummingbird

/// `GET /health` (the process answers), `GET /ready` (Redis and PostgreSQL answer), `GET /status`
/// (queue depths by priority, what is paused, each limited type's limits and their use, in-flight work by
/// type, live agents).
///
/// Without a `read` token, `/ready` names the unhealthy backend but not its error text, and `/status`
/// leaves out the agents' hosts and pids: both are reachable by anyone who can reach the port.
struct HealthRoutes: Sendable {
    let redis: any RedisClient
    let store: TaskStore
    let keys: RedisKeys
    let registry: TaskTypeRegistry
    let retryAfterSeconds: Int

    /// How long `/ready` waits for each backend: a frozen one is reported as such, not waited on.
    static let probeDeadline = Duration.seconds(2)

    func register(on router: RouterGroup<CoordinatorRequestContext>) {
        router.get("health") { _, _ in JSONResponse.make(.ok, "{\"status\":\"ok\"}") }
        router.get("ready") { _, context in await ready(detailed: context.allows(.read)) }
        router.get("status") { _, context in try await status(detailed: context.allows(.read)) }
    }

    private func ready(detailed: Bool) async -> Response {
        let redis = self.redis
        let store = self.store
        async let redisCheck = Self.probe {
            let reply = try await redis.send(RedisCommand("PING"))
            if let message = reply.errorMessage { throw RedisError(.commandFailed, message, command: "PING") }
        }
        async let postgresCheck = Self.probe { try await store.ping() }
        let (redisError, postgresError) = await (redisCheck, postgresCheck)
        func field(_ error: String?) -> String {
            guard let error else { return "\"ok\"" }
            guard detailed else { return "\"unavailable\"" }
            var out = ""
            JSONValue.writeString(error, into: &out)
            return out
        }
        let body = "{\"status\":\"\(redisError == nil && postgresError == nil ? "ready" : "unavailable")\",\"redis\":\(field(redisError)),\"postgres\":\(field(postgresError))}"
        if redisError == nil && postgresError == nil { return JSONResponse.make(.ok, body) }
        return JSONResponse.make(.serviceUnavailable, body, headers: [.retryAfter: String(retryAfterSeconds)])
    }

    /// Runs `check` for at most ``probeDeadline``; returns nil when it passed, else what went wrong.
    ///
    /// Unstructured on purpose: a call parked on a backend connection's thread cannot be cancelled, and a
    /// task group would wait for it. The check goes on in the background until the backend's own deadline
    /// (`CONVEYOR_REDIS_TIMEOUT`, `CONVEYOR_POSTGRES_STATEMENT_TIMEOUT`) ends it, so it is bounded too.
    private static func probe(_ check: @escaping @Sendable () async throws -> Void) async -> String? {
        let outcome = Promise<String?>()
        Task {
            do {
                try await check()
                outcome.succeed(nil)
            } catch {
                outcome.succeed("\(error)")
            }
        }
        Task {
            try? await Task.sleep(for: probeDeadline)
            outcome.succeed("no answer within \(probeDeadline)")
        }
        return (try? await outcome.value) ?? nil
    }

    private func status(detailed: Bool) async throws -> Response {
        let replies: (agents: RedisReply, queues: [QueueState])
        do {
            let agents = try await redis.send(RedisCommand("HGETALL", [keys.agents]))
            replies = (agents, try await QueueState.read(registry.queues, registry: registry, redis: redis, keys: keys))
        } catch {
            throw APIError.from(storage: error, retryAfterSeconds: retryAfterSeconds)
        }
        let now = WallClock.nowMillis()
        var agents: [AgentHeartbeat] = []
        let decoder = JSONDecoder()
        let flat = replies.agents.array ?? []
        var index = 1
        while index < flat.count {
            if let text = flat[index].string, let heartbeat = try? decoder.decode(AgentHeartbeat.self, from: Data(text.utf8)), heartbeat.expiresAt > now {
                agents.append(heartbeat)
            }
            index += 2
        }
        var inFlightByType: [String: Int] = [:]
        for agent in agents {
            for (type, count) in agent.inFlight { inFlightByType[type, default: 0] += count }
        }
        let queueJSON = replies.queues.map(Self.json)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let agentsJSON = String(decoding: try encoder.encode(agents.sorted { $0.id < $1.id }), as: UTF8.self)
        let inFlightJSON = String(decoding: try encoder.encode(inFlightByType), as: UTF8.self)
        var body = "{\"queues\":{\(queueJSON.joined(separator: ","))},\"in_flight_by_type\":\(inFlightJSON),\"live_agents\":\(agents.count)"
        body += detailed ? ",\"agents\":\(agentsJSON)}" : "}"
        return JSONResponse.make(.ok, body)
    }

    /// `"<queue>":{ready, ready_by_priority, in_flight, delayed, dead, paused, paused_types, types: {…}}`;
    /// `types` lists the types with a limit or a pause, each with its limits and their use.
    static func json(_ state: QueueState) -> String {
        func string(_ text: String?) -> String {
            guard let text else { return "null" }
            var out = ""
            JSONValue.writeString(text, into: &out)
            return out
        }
        let byPriority = TaskPriority.allCases.reversed().map { "\"\($0.name)\":\(state.backlog[$0] ?? 0)" }.joined(separator: ",")
        let pausedTypes = state.paused.subtracting(["*"]).sorted().map { string($0) }.joined(separator: ",")
        var json = "\(string(state.queue)):{\"ready\":\(state.totalBacklog),\"ready_by_priority\":{\(byPriority)},"
        json += "\"in_flight\":\(state.inFlight),\"delayed\":\(state.delayed),\"dead\":\(state.dead),"
        json += "\"paused\":\(state.paused.contains("*")),\"paused_types\":[\(pausedTypes)],\"types\":{"
        var first = true
        for use in state.types where use.definition.isFlowControlled || use.paused > 0 || state.paused.contains(use.definition.name) {
            let type = use.definition
            if !first { json += "," }
            first = false
            json += "\(string(type.name)):{\"max_concurrent\":\(type.maxConcurrent.map(String.init) ?? "null"),\"running\":\(use.running),"
            json += "\"utilisation\":\(type.maxConcurrent.map { String(format: "%.3f", Double(use.running) / Double($0)) } ?? "null"),"
            json += "\"rate_limit\":\(string(type.rateLimit?.description)),\"waiting_for_slot\":\(use.waitingForSlot),"
            json += "\"paused\":\(state.paused.contains(type.name)),\"parked_by_pause\":\(use.paused)"
            if let perKey = type.perKey {
                json += ",\"per_key\":{\"max_concurrent\":\(perKey.maxConcurrent.map(String.init) ?? "null"),"
                json += "\"rate_limit\":\(string(perKey.rateLimit?.description)),\"keys_waiting\":\(use.keysWaiting)}"
            }
            json += "}"
        }
        return json + "}}"
    }
}
