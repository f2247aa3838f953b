import ConveyorCore
import ConveyorPostgres
import Foundation
import Hummingbird

/// `POST /v1/tasks/{id}/progress`: progress from a worker that is not an agent (the HTTP push handler,
/// a script calling back). Relayed like an agent's report (``ProgressRelay``): throttled, through the
/// events stream, never moving the task's status.
///
/// Body: any of `fraction` (0–1), `step`, `total_steps`, `message`, plus `attempt` (the attempt the
/// report belongs to; default: the task's current one). 202 once accepted; 409 for a finished task or an
/// attempt that is no longer current.
struct TaskProgressRoutes: Sendable {
    let store: TaskStore
    let relay: ProgressRelay
    let retryAfterSeconds: Int

    /// The body is a small JSON object.
    static let maximumBodyBytes = 16 * 1024

    func register(on group: RouterGroup<CoordinatorRequestContext>) {
        group.post("tasks/{id}/progress") { request, context in try await report(request, context: context) }
    }

    private func report(_ request: Request, context: CoordinatorRequestContext) async throws -> Response {
        // A worker holds a token with the submit scope: it may report on the tasks it submitted; admin on any.
        let reportsAny = context.allows(.admin)
        if !reportsAny { try context.require(.submit, for: "report progress") }
        let id = try TaskWatchRoutes.taskID(context)
        let (progress, attempt) = try Self.parse(try await body(request))
        let task: TaskRecord?
        do {
            task = try await store.get(id)
        } catch {
            throw APIError.from(storage: error, retryAfterSeconds: retryAfterSeconds)
        }
        guard let task, reportsAny || task.submittedBy == context.token?.name else { throw APIError.notFound("no task with id \(id)") }
        guard !task.status.isTerminal else {
            throw APIError.conflict("already_finished", "task \(id) is already \(task.status.rawValue)")
        }
        // The current attempt, or the next one (its start may not be recorded yet when the worker reports).
        let current = max(task.attempts, 1)
        let reported = attempt ?? current
        guard reported == current || reported == task.attempts + 1, reported <= task.maxAttempts else {
            throw APIError.conflict("stale_attempt", "task \(id) is on attempt \(current) of \(task.maxAttempts); attempt \(reported) cannot report")
        }
        relay.report(id, progress, to: .init(
            queue: task.queue, type: task.type, attempt: reported, correlationID: task.correlationID,
            reporter: "api:" + (context.token?.name ?? "anonymous")))
        return JSONResponse.make(.accepted, "{\"id\":\(id.rawValue),\"accepted\":true}")
    }

    private func body(_ request: Request) async throws -> Data {
        do {
            let buffer = try await request.body.collect(upTo: Self.maximumBodyBytes)
            return Data(buffer.readableBytesView)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw APIError.payloadTooLarge(limit: Self.maximumBodyBytes)
        }
    }

    /// The report and its optional attempt, or the 400 that names what is wrong.
    static func parse(_ body: Data) throws(APIError) -> (TaskProgress, Int?) {
        guard let json = try? JSONValue.parse(body) else { throw .badRequest("the body is not valid JSON", code: "malformed_json") }
        var attempt: Int?
        switch json["attempt"] {
        case nil, .null?: break
        case let value?:
            guard let number = value.intValue, let int = Int(exactly: number), int >= 1 else {
                throw .badRequest("attempt: an integer of at least 1", code: "invalid_field")
            }
            attempt = int
        }
        do {
            return (try TaskProgress(json: json, allowing: ["attempt"]), attempt)
        } catch {
            throw .badRequest(error.message, code: "invalid_progress")
        }
    }
}
