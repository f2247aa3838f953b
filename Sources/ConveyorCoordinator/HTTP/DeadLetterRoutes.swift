import ConveyorCore
import Hummingbird
import Logging

/// `GET /v1/dead?type=&limit=&cursor=`, `POST /v1/dead/{id}/retry`, `POST /v1/dead/retry?type=`.
struct DeadLetterRoutes: Sendable {
    let deadLetters: DeadLetterQueue
    let retryAfterSeconds: Int

    static let defaultLimit = 100
    static let maxLimit = 1000

    func register(on group: RouterGroup<CoordinatorRequestContext>) {
        group.get("dead") { request, context in try await list(request, context: context) }
        group.post("dead/retry") { request, context in try await retryAll(request, context: context) }
        group.post("dead/{id}/retry") { request, context in try await retryOne(request, context: context) }
    }

    private func list(_ request: Request, context: CoordinatorRequestContext) async throws -> Response {
        try context.require(.read, for: "list dead letters")
        let query = request.uri.queryParameters
        let limit = try RequestReading.limit(request, defaultLimit: Self.defaultLimit, maxLimit: Self.maxLimit)
        let type = query["type"].map(String.init)
        let cursor = query["cursor"].map(String.init)
        let page = try await storage(context) { try await deadLetters.list(type: type, limit: limit, after: cursor) }
        var json = "{\"dead\":["
        for (index, letter) in page.letters.enumerated() {
            if index > 0 { json += "," }
            json += "{\"id\":\(letter.id.map { String($0.rawValue) } ?? "null"),\"type\":\(Self.string(letter.type)),"
            json += "\"queue\":\(Self.string(letter.queue)),\"attempt\":\(letter.attempt.map(String.init) ?? "null"),"
            json += "\"error\":\(Self.string(letter.error)),\"dead_at\":\(Self.string(letter.deadAtMillis.map { UTCTime.format(millis: $0) })),"
            json += "\"correlation_id\":\(Self.string(letter.correlationID))}"
        }
        json += "],\"next_cursor\":\(Self.string(page.next))}"
        return JSONResponse.make(.ok, json)
    }

    private func retryOne(_ request: Request, context: CoordinatorRequestContext) async throws -> Response {
        try context.require(.admin, for: "redrive dead letters")
        guard let text = context.parameters.get("id"), let id = TaskID(text) else {
            throw APIError.notFound("no task with id '\(context.parameters.get("id") ?? "")'")
        }
        context.logAdminAction("redrive", target: "task \(id)")
        do {
            let task = try await storage(context) { try await deadLetters.redrive(id) }
            return JSONResponse.make(.ok, "{\"id\":\(task.id.rawValue),\"status\":\"queued\",\"attempt\":\(task.attempts + 1),\"max_attempts\":\(task.maxAttempts)}")
        } catch DeadLetterQueue.RedriveError.notFound {
            throw APIError.notFound("no task with id \(id)")
        } catch DeadLetterQueue.RedriveError.notDead(let status) {
            throw APIError.conflict("not_dead", "task \(id) is \(status.rawValue), not dead")
        } catch DeadLetterQueue.RedriveError.expiring {
            throw APIError.conflict("expiring", "task \(id) died too long ago: retention is about to remove it (CONVEYOR_RETENTION)")
        }
    }

    private func retryAll(_ request: Request, context: CoordinatorRequestContext) async throws -> Response {
        try context.require(.admin, for: "redrive dead letters")
        let type = request.uri.queryParameters["type"].map(String.init)
        context.logAdminAction("redrive all", target: type.map { "type \($0)" } ?? "every type")
        let count = try await storage(context) { try await deadLetters.redriveAll(type: type) }
        return JSONResponse.make(.ok, "{\"redriven\":\(count)}")
    }

    /// Maps storage failures to 503/500 like the task routes; lets redrive outcomes through.
    private func storage<T: Sendable>(_ context: CoordinatorRequestContext, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as DeadLetterQueue.RedriveError {
            throw error
        } catch {
            let apiError = APIError.from(storage: error, retryAfterSeconds: retryAfterSeconds)
            if apiError.status == .internalServerError {
                context.logger.error("dead-letter operation failed", metadata: ["error": "\(error)"])
            }
            throw apiError
        }
    }

    private static func string(_ value: String?) -> String { JSONResponse.string(value) }
}
