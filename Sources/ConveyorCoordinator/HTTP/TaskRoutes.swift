import ConveyorCore
import ConveyorMetricNames
import ConveyorPostgres
import ConveyorRedis
import Foundation
import Hummingbird
import Logging
import Metrics

/// `POST /v1/tasks`, `POST /v1/tasks/batch`, `GET /v1/tasks/{id}` (with `?wait=` to long-poll),
/// `POST /v1/tasks/{id}/cancel`.
struct TaskRoutes: Sendable {
    let parser: TaskSubmissionParser
    let submitter: Submitter
    let store: TaskStore
    let watch: TaskWatchRoutes
    let redis: any RedisClient
    let keys: RedisKeys
    /// Carries on the workflow of a cancelled node (its dependants are decided by the cancel).
    let workflows: WorkflowAdvancer
    /// Wakes the WebhookDispatcher: a cancel may have queued a delivery.
    let onCancelled: @Sendable () -> Void
    let maxBodyBytes: Int
    let retryAfterSeconds: Int

    func register(on group: RouterGroup<CoordinatorRequestContext>) {
        group.post("tasks") { request, context in try await submitOne(request, context: context) }
        group.post("tasks/batch") { request, context in try await submitBatch(request, context: context) }
        group.get("tasks/{id}") { request, context in try await get(request, context: context) }
        group.post("tasks/{id}/cancel") { request, context in try await cancel(request, context: context) }
    }

    /// Cancels a task that has not finished: a scheduled, queued or delayed one never runs; a running one is told
    /// to stop by its agent's CancelWatcher. The id goes into the queue's cancelled set before the row
    /// says `cancelled`, so an agent can never see the status without the signal.
    private func cancel(_ request: Request, context: CoordinatorRequestContext) async throws -> Response {
        try context.require(.admin, for: "cancel a task")
        guard let text = context.parameters.get("id"), let id = TaskID(text) else {
            throw APIError.notFound("no task with id '\(context.parameters.get("id") ?? "")'")
        }
        context.logAdminAction("cancel", target: "task \(id)")
        do {
            guard let (queue, status) = try await store.queueAndStatus(of: id) else { throw APIError.notFound("no task with id \(id)") }
            guard !status.isTerminal else { throw APIError.conflict("already_finished", "task \(id) is already \(status.rawValue)") }
            // A workflow node still waiting has no entry in Redis to stop; a mark would outlive it and
            // cancel the node's next run, should its workflow be retried.
            let marked = status != .waiting
            if marked { _ = try await redis.send(RedisCommand("SADD", [keys.cancelled(queue), id.description])) }
            guard let advance = try await store.cancel(id) else {
                if marked { _ = try? await redis.send(RedisCommand("SREM", [keys.cancelled(queue), id.description])) }
                throw APIError.conflict("already_finished", "task \(id) finished before it could be cancelled")
            }
            await workflows.carryOut(advance)
            onCancelled()
            return JSONResponse.make(.ok, "{\"id\":\(id.rawValue),\"status\":\"cancelled\"}")
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError.from(storage: error, retryAfterSeconds: retryAfterSeconds)
        }
    }

    private func submitOne(_ request: Request, context: CoordinatorRequestContext) async throws -> Response {
        try context.require(.submit, for: "submit tasks")
        try shedWhenFull()
        let body = try await RequestReading.body(request, maxBytes: maxBodyBytes)
        var task = try parser.parseSingle(
            body, correlationID: context.correlationID, idempotencyKey: request.headers.value(of: .idempotencyKey), now: WallClock.nowMillis())
        task.submittedBy = context.token?.name
        let inserted = try await submit([task], logger: context.logger)[0]
        var json = "{\"id\":\(inserted.id.rawValue),\"status\":\"\(inserted.status.rawValue)\""
        if inserted.created, let runAt = task.runAtMillis { json += ",\"run_at\":\"\(UTCTime.format(millis: runAt))\"" }
        json += "}"
        if inserted.created { return JSONResponse.make(.created, json) }
        return JSONResponse.make(.ok, json, headers: [.idempotentReplayed: "true"])
    }

    private func submitBatch(_ request: Request, context: CoordinatorRequestContext) async throws -> Response {
        try context.require(.submit, for: "submit tasks")
        try shedWhenFull()
        let body = try await RequestReading.body(request, maxBytes: maxBodyBytes)
        var tasks = try parser.parseBatch(
            body, correlationID: context.correlationID, idempotencyKey: request.headers.value(of: .idempotencyKey), now: WallClock.nowMillis())
        if let owner = context.token?.name {
            for index in tasks.indices { tasks[index].submittedBy = owner }
        }
        let inserted = try await submit(tasks, logger: context.logger)
        var json = "{\"tasks\":["
        json.reserveCapacity(inserted.count * 36 + 16)
        for (index, task) in inserted.enumerated() {
            if index > 0 { json += "," }
            json += "{\"id\":\(task.id.rawValue),\"status\":\"\(task.status.rawValue)\"}"
        }
        json += "]}"
        // Every element an idempotent replay: nothing new was created, as for a single replay.
        if !inserted.contains(where: \.created) {
            return JSONResponse.make(.ok, json, headers: [.idempotentReplayed: "true"])
        }
        return JSONResponse.make(.created, json)
    }

    /// Sheds a submission before its body is read when the Submitter's queue is already full, so an
    /// overloaded coordinator spends next to nothing on what it cannot take. (One that passes here may
    /// still be shed after parsing, when its tasks do not fit.)
    private func shedWhenFull() throws {
        guard submitter.isFull else { return }
        Counter(label: MetricsCatalog.submissionsShed.name).increment()
        throw APIError.overloaded("the coordinator is overloaded; nothing was stored, retry later", retryAfterSeconds: retryAfterSeconds)
    }

    private func submit(_ tasks: [NewTask], logger: Logger) async throws -> [InsertedTask] {
        do {
            return try await submitter.submit(tasks, whenFull: .shed)
        } catch {
            let apiError = APIError.from(storage: error, retryAfterSeconds: retryAfterSeconds)
            if apiError.status == .internalServerError {
                logger.error("submission failed", metadata: ["error": "\(error)"])
            }
            throw apiError
        }
    }

    private func get(_ request: Request, context: CoordinatorRequestContext) async throws -> Response {
        let readsAll = context.allows(.read)
        if !readsAll { try context.require(.submit, for: "read tasks") }
        guard let text = context.parameters.get("id"), let id = TaskID(text) else {
            throw APIError.notFound("no task with id '\(context.parameters.get("id") ?? "")'")
        }
        let wait = try TaskWatchRoutes.waitDuration(request.uri.queryParameters.get("wait"))
        let record: TaskRecord?
        do {
            record = try await store.get(id)
        } catch {
            let apiError = APIError.from(storage: error, retryAfterSeconds: retryAfterSeconds)
            if apiError.status == .internalServerError {
                context.logger.error("reading a task failed", metadata: ["error": "\(error)"])
            }
            throw apiError
        }
        // A submit-only token sees its own tasks; another's is "not found", so ids cannot be probed.
        guard let record, readsAll || record.submittedBy == context.token?.name else { throw APIError.notFound("no task with id \(id)") }
        if let wait {
            return JSONResponse.make(.ok, Self.json(try await watch.waitUntilTerminal(record, for: wait)))
        }
        return JSONResponse.make(.ok, Self.json(record))
    }

    static func json(_ task: TaskRecord) -> String {
        func string(_ value: String?) -> String {
            guard let value else { return "null" }
            var out = ""
            JSONValue.writeString(value, into: &out)
            return out
        }
        return "{\"id\":\(task.id.rawValue),\"type\":\(string(task.type)),\"queue\":\(string(task.queue)),"
            + "\"status\":\"\(task.status.rawValue)\",\"attempts\":\(task.attempts),\"max_attempts\":\(task.maxAttempts),"
            + "\"params\":\(task.params),\"result\":\(task.result ?? "null"),\"error\":\(string(task.error)),"
            + "\"correlation_id\":\(string(task.correlationID)),\"idempotency_key\":\(string(task.idempotencyKey)),"
            + "\"created_at\":\(string(task.createdAt)),\"updated_at\":\(string(task.updatedAt)),"
            + "\"started_at\":\(string(task.startedAt)),\"finished_at\":\(string(task.finishedAt)),"
            + "\"progress\":\(task.progress ?? "null"),\"tags\":\(task.tags ?? "{}"),"
            + "\"run_at\":\(string(task.runAt)),\"callback_url\":\(string(task.callbackURL)),"
            + "\"priority\":\"\(task.priority.name)\",\"limit_key\":\(string(task.limitKey))}"
    }
}
