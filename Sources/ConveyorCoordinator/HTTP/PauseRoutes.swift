import ConveyorCore
import ConveyorPostgres
import Hummingbird

/// `GET /v1/queues` (each queue with what is paused in it), `POST /v1/queues/{queue}/pause|resume` and
/// `POST /v1/types/{type}/pause|resume` (admin scope).
struct PauseRoutes: Sendable {
    let pauses: QueuePauses
    let retryAfterSeconds: Int

    var registry: TaskTypeRegistry { pauses.registry }

    func register(on group: RouterGroup<CoordinatorRequestContext>) {
        group.get("queues") { _, context in try await list(context: context) }
        group.post("queues/{queue}/pause") { _, context in try await change(context, pause: true, target: try queue(context)) }
        group.post("queues/{queue}/resume") { _, context in try await change(context, pause: false, target: try queue(context)) }
        group.post("types/{type}/pause") { _, context in try await change(context, pause: true, target: try type(context)) }
        group.post("types/{type}/resume") { _, context in try await change(context, pause: false, target: try type(context)) }
    }

    private func queue(_ context: CoordinatorRequestContext) throws -> QueuePauses.Target {
        let name = context.parameters.get("queue") ?? ""
        guard registry.queues.contains(name) else {
            throw APIError.notFound("no queue '\(name)' (known: \(registry.queues.joined(separator: ", ")))")
        }
        return QueuePauses.Target(queue: name, type: nil)
    }

    private func type(_ context: CoordinatorRequestContext) throws -> QueuePauses.Target {
        let name = context.parameters.get("type") ?? ""
        guard let definition = registry[name] else { throw APIError.notFound("no task type '\(name)'") }
        return QueuePauses.Target(queue: definition.queue, type: name)
    }

    private func change(_ context: CoordinatorRequestContext, pause: Bool, target: QueuePauses.Target) async throws -> Response {
        let what = target.type.map { "type \($0)" } ?? "queue \(target.queue)"
        try context.require(.admin, for: pause ? "pause \(what)" : "resume \(what)")
        context.logAdminAction(pause ? "pause" : "resume", target: what)
        var json = "{\"queue\":\(Self.string(target.queue)),\"type\":\(Self.string(target.type)),"
        do {
            if pause {
                let record = try await pauses.pause(target, by: context.token?.name)
                json += "\"paused\":true,\"paused_at\":\(Self.string(UTCTime.format(millis: record.pausedAtMillis)))}"
            } else {
                let outcome = try await pauses.resume(target)
                json += "\"paused\":false,\"was_paused\":\(outcome.wasPaused),\"requeued\":\(outcome.requeued)}"
            }
        } catch {
            throw APIError.from(storage: error, retryAfterSeconds: retryAfterSeconds)
        }
        return JSONResponse.make(.ok, json)
    }

    private func list(context: CoordinatorRequestContext) async throws -> Response {
        try context.require(.read, for: "list queues")
        let recorded: [PauseStore.Pause]
        do {
            recorded = try await pauses.store.all()
        } catch {
            throw APIError.from(storage: error, retryAfterSeconds: retryAfterSeconds)
        }
        var json = "{\"queues\":["
        for (index, queue) in registry.queues.enumerated() {
            if index > 0 { json += "," }
            let mine = recorded.filter { $0.queue == queue }
            let whole = mine.first { $0.type == nil }
            let types = registry.types.values.filter { $0.queue == queue }.map(\.name).sorted()
            json += "{\"name\":\(Self.string(queue)),\"paused\":\(whole != nil),"
            json += "\"paused_at\":\(Self.string(whole.map { UTCTime.format(millis: $0.pausedAtMillis) })),"
            json += "\"types\":[\(types.map(Self.string).joined(separator: ","))],"
            json += "\"paused_types\":[\(mine.compactMap(\.type).map(Self.string).joined(separator: ","))]}"
        }
        return JSONResponse.make(.ok, json + "]}")
    }

    static func string(_ value: String?) -> String {
        guard let value else { return "null" }
        var out = ""
        JSONValue.writeString(value, into: &out)
        return out
    }
}
