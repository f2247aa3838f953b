import ConveyorCore
import ConveyorPostgres
import ConveyorRedis
import Foundation
import Hummingbird

/// `GET /health` (the process answers), `GET /ready` (Redis and PostgreSQL answer), `GET /status`
/// (queue depths, in-flight work by type, live agents).
///
/// Without a `read` token, `/ready` names the unhealthy backend but not its error text, and `/status`
/// leaves out the agents' hosts and pids: both are reachable by anyone who can reach the port.
struct HealthRoutes: Sendable {
    let redis: RedisConnection
    let store: TaskStore
    let keys: RedisKeys
    let queues: [String]
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
        var commands = [RedisCommand("HGETALL", [keys.agents])]
        for queue in queues {
            commands.append(RedisCommand("XLEN", [keys.ready(queue)]))
            commands.append(RedisCommand("XPENDING", [keys.ready(queue), RedisKeys.agentsGroup]))
            commands.append(RedisCommand("ZCARD", [keys.delayed(queue)]))
            commands.append(RedisCommand("XLEN", [keys.dead(queue)]))
            commands.append(RedisConnection.xinfoGroups(stream: keys.ready(queue)))
        }
        let replies: [RedisReply]
        do {
            replies = try await redis.send(commands)
        } catch {
            throw APIError.from(storage: error, retryAfterSeconds: retryAfterSeconds)
        }
        let now = WallClock.nowMillis()
        var agents: [AgentHeartbeat] = []
        let decoder = JSONDecoder()
        let flat = replies[0].array ?? []
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
        var queueJSON: [String] = []
        for (offset, queue) in queues.enumerated() {
            let base = 1 + offset * 5
            // XPENDING's summary form: [count, smallest id, greatest id, consumers]; an error when the group is missing.
            let pending = replies[base + 1].array?.first?.integer ?? 0
            let delayed = replies[base + 2].integer ?? 0
            let dead = replies[base + 3].integer ?? 0
            var name = ""
            JSONValue.writeString(queue, into: &name)
            let undelivered = RedisConnection.backlog(length: replies[base], pending: pending, groups: replies[base + 4], group: RedisKeys.agentsGroup)
            queueJSON.append("\(name):{\"ready\":\(undelivered),\"in_flight\":\(pending),\"delayed\":\(delayed),\"dead\":\(dead)}")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let agentsJSON = String(decoding: try encoder.encode(agents.sorted { $0.id < $1.id }), as: UTF8.self)
        let inFlightJSON = String(decoding: try encoder.encode(inFlightByType), as: UTF8.self)
        var body = "{\"queues\":{\(queueJSON.joined(separator: ","))},\"in_flight_by_type\":\(inFlightJSON),\"live_agents\":\(agents.count)"
        body += detailed ? ",\"agents\":\(agentsJSON)}" : "}"
        return JSONResponse.make(.ok, body)
    }
}
