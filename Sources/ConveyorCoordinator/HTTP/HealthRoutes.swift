import ConveyorCore
import ConveyorPostgres
import ConveyorRedis
import Foundation
import Hummingbird

/// `GET /health` (the process answers), `GET /ready` (Redis and PostgreSQL answer), `GET /status`
/// (queue depths, in-flight work by type, live agents).
struct HealthRoutes: Sendable {
    let redis: RedisConnection
    let store: TaskStore
    let keys: RedisKeys
    let queues: [String]
    let retryAfterSeconds: Int

    func register(on router: Router<CoordinatorRequestContext>) {
        router.get("health") { _, _ in JSONResponse.make(.ok, "{\"status\":\"ok\"}") }
        router.get("ready") { _, _ in await ready() }
        router.get("status") { _, _ in try await status() }
    }

    private func ready() async -> Response {
        async let redisCheck: String? = {
            do {
                let reply = try await redis.send(RedisCommand("PING"))
                return reply.errorMessage
            } catch {
                return "\(error)"
            }
        }()
        async let postgresCheck: String? = {
            do {
                try await store.ping()
                return nil
            } catch {
                return "\(error)"
            }
        }()
        let (redisError, postgresError) = await (redisCheck, postgresCheck)
        func field(_ error: String?) -> String {
            guard let error else { return "\"ok\"" }
            var out = ""
            JSONValue.writeString(error, into: &out)
            return out
        }
        let body = "{\"status\":\"\(redisError == nil && postgresError == nil ? "ready" : "unavailable")\",\"redis\":\(field(redisError)),\"postgres\":\(field(postgresError))}"
        if redisError == nil && postgresError == nil { return JSONResponse.make(.ok, body) }
        return JSONResponse.make(.serviceUnavailable, body, headers: [.retryAfter: String(retryAfterSeconds)])
    }

    private func status() async throws -> Response {
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
        let body = "{\"queues\":{\(queueJSON.joined(separator: ","))},\"in_flight_by_type\":\(inFlightJSON),\"live_agents\":\(agents.count),\"agents\":\(agentsJSON)}"
        return JSONResponse.make(.ok, body)
    }
}
