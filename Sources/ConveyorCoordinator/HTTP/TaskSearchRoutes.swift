import ConveyorCore
import ConveyorPostgres
import Foundation
import Hummingbird

/// `GET /v1/tasks` (search, newest first, keyset pages), `POST /v1/tasks/cancel` and
/// `POST /v1/tasks/retry` (bulk actions by the same filters).
struct TaskSearchRoutes: Sendable {
    let store: TaskStore
    let actions: TaskActions
    let maxBodyBytes: Int
    let retryAfterSeconds: Int

    static let defaultLimit = 50

    func register(on group: RouterGroup<CoordinatorRequestContext>) {
        group.get("tasks") { request, context in try await search(request, context: context) }
        group.post("tasks/cancel") { request, context in try await bulk(request, context: context, action: .cancel) }
        group.post("tasks/retry") { request, context in try await bulk(request, context: context, action: .retry) }
    }

    private func search(_ request: Request, context: CoordinatorRequestContext) async throws -> Response {
        let readsAll = context.allows(.read)
        if !readsAll { try context.require(.submit, for: "read tasks") }
        let pairs = TaskFilterParser.pairs(query: request)
        var filter = try TaskFilterParser.filter(pairs, extra: ["limit", "cursor"])
        // A submit-only token finds its own tasks and no others.
        if !readsAll { filter.submittedBy = context.token?.name }
        let limit = try RequestReading.limit(request, defaultLimit: Self.defaultLimit, maxLimit: TaskStore.maximumPageSize)
        let cursor = try TaskFilterParser.cursor(request.uri.queryParameters["cursor"].map(String.init))
        let page = try await storage(context) { try await store.search(filter, limit: limit, before: cursor) }
        return JSONResponse.make(.ok, Self.json(page))
    }

    enum Action: String {
        case cancel, retry
    }

    private func bulk(_ request: Request, context: CoordinatorRequestContext, action: Action) async throws -> Response {
        try context.require(.admin, for: "\(action.rawValue) tasks in bulk")
        let body = try await RequestReading.body(request, maxBytes: maxBodyBytes)
        let json: JSONValue
        do {
            json = try JSONValue.parse(body)
        } catch {
            throw APIError.badRequest("the body is not valid JSON: \(error)", code: "malformed_json")
        }
        var pairs = try TaskFilterParser.pairs(json: json)
        var bound = TaskActions.defaultBound
        if let index = pairs.firstIndex(where: { $0.name == "limit" }) {
            guard let value = Int(pairs[index].value), (1...TaskActions.maximumBound).contains(value) else {
                throw APIError.badRequest("limit: must be 1–\(TaskActions.maximumBound)", code: "invalid_field")
            }
            bound = value
            pairs.remove(at: index)
        }
        let filter = try TaskFilterParser.filter(pairs, extra: [])
        guard !filter.isEmpty else {
            throw APIError.badRequest(
                "give at least one filter (to act on every \(action == .retry ? "failed or dead" : "unfinished") task, name the statuses)",
                code: "filter_required")
        }
        context.logAdminAction("\(action.rawValue) in bulk", target: "up to \(bound) tasks matching \(Self.describe(pairs))")
        do {
            let outcome = try await storage(context) {
                switch action {
                case .cancel: try await actions.cancel(matching: filter, bound: bound)
                case .retry: try await actions.retry(matching: filter, bound: bound)
                }
            }
            let key = action == .cancel ? "cancelled" : "retried"
            return JSONResponse.make(.ok, "{\"\(key)\":\(outcome.actedOn),\"more\":\(outcome.more)}")
        } catch TaskActions.ActionError.statusesNotApplicable(let message) {
            throw APIError.badRequest(message, code: "invalid_filter")
        }
    }

    static func describe(_ pairs: [(name: String, value: String)]) -> String {
        pairs.map { "\($0.name)=\($0.value)" }.joined(separator: " ")
    }

    static func json(_ page: TaskPage) -> String {
        var json = "{\"tasks\":["
        json.reserveCapacity(page.tasks.count * 400 + 40)
        for (index, task) in page.tasks.enumerated() {
            if index > 0 { json += "," }
            json += Self.json(task)
        }
        json += "],\"next_cursor\":\(JSONResponse.string(page.nextCursor?.description))}"
        return json
    }

    static func json(_ task: TaskSummary) -> String {
        let string = JSONResponse.string
        return "{\"id\":\(task.id.rawValue),\"type\":\(string(task.type)),\"queue\":\(string(task.queue)),"
            + "\"status\":\"\(task.status.rawValue)\",\"attempts\":\(task.attempts),\"max_attempts\":\(task.maxAttempts),"
            + "\"correlation_id\":\(string(task.correlationID)),\"idempotency_key\":\(string(task.idempotencyKey)),"
            + "\"created_at\":\(string(task.createdAt)),\"updated_at\":\(string(task.updatedAt)),"
            + "\"finished_at\":\(string(task.finishedAt)),\"error\":\(string(task.error)),\"tags\":\(task.tags ?? "{}"),"
            + "\"workflow_id\":\(task.workflowID.map(String.init) ?? "null")}"
    }

    /// Maps storage failures to 503/500 like the other routes; lets action errors through.
    private func storage<T: Sendable>(_ context: CoordinatorRequestContext, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as TaskActions.ActionError {
            throw error
        } catch let error as APIError {
            throw error
        } catch {
            let apiError = APIError.from(storage: error, retryAfterSeconds: retryAfterSeconds)
            if apiError.status == .internalServerError {
                context.logger.error("task search or bulk action failed", metadata: ["error": "\(error)"])
            }
            throw apiError
        }
    }
}
