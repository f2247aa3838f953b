import ConveyorCore
import ConveyorMetricNames
import ConveyorPostgres
import ConveyorRedis
import Foundation
import Hummingbird
import Logging
import Metrics

/// `POST /v1/workflows`, `GET /v1/workflows`, `GET /v1/workflows/{id}`, `POST /v1/workflows/{id}/cancel`,
/// `POST /v1/workflows/{id}/retry`.
struct WorkflowRoutes: Sendable {
    let parser: TaskSubmissionParser
    let store: WorkflowStore
    let advancer: WorkflowAdvancer
    let maxBodyBytes: Int
    let retryAfterSeconds: Int
    /// Retries workflows (shared with the bulk retry of failed nodes).
    let actions: TaskActions

    static let defaultLimit = 50
    static let maxLimit = 500

    func register(on group: RouterGroup<CoordinatorRequestContext>) {
        group.post("workflows") { request, context in try await submit(request, context: context) }
        group.get("workflows") { request, context in try await list(request, context: context) }
        group.get("workflows/{id}") { request, context in try await get(request, context: context) }
        group.post("workflows/{id}/cancel") { request, context in try await cancel(request, context: context) }
        group.post("workflows/{id}/retry") { request, context in try await retry(request, context: context) }
    }

    /// Stores the whole workflow in one transaction, then puts its roots on their ready streams. 201 once
    /// it is committed; should Redis refuse the roots, they stay queued and the Reconciler dispatches
    /// them after the dispatch grace (durable and dispatched later, as a task's 201 promises).
    private func submit(_ request: Request, context: CoordinatorRequestContext) async throws -> Response {
        try context.require(.submit, for: "submit workflows")
        let body = try await RequestReading.body(request, maxBytes: maxBodyBytes)
        var workflow = try parser.parseWorkflow(
            body, correlationID: context.correlationID, idempotencyKey: request.headers.value(of: .idempotencyKey), now: WallClock.nowMillis())
        workflow.submittedBy = context.token?.name
        if let owner = context.token?.name {
            for index in workflow.nodes.indices { workflow.nodes[index].task.submittedBy = owner }
        }
        let inserted = try await storage(context) { try await store.insert(workflow) }
        if inserted.created {
            Counter(label: MetricsCatalog.workflowsStarted.name, dimensions: [("workflow", workflow.name)]).increment()
            do {
                try await advancer.dispatchRoots(inserted.roots)
            } catch {
                context.logger.warning("workflow stored but its roots could not be dispatched yet; the Reconciler will", metadata: [
                    "workflow_id": "\(inserted.id)", "error": "\(error)",
                ])
            }
        }
        var json = "{\"id\":\(inserted.id.rawValue),\"status\":\"\(inserted.status.rawValue)\",\"nodes\":{"
        json.reserveCapacity(inserted.nodes.count * 32 + 64)
        for (index, node) in inserted.nodes.enumerated() {
            if index > 0 { json += "," }
            JSONValue.writeString(node.key, into: &json)
            json += ":\(node.id.rawValue)"
        }
        json += "}}"
        if inserted.created { return JSONResponse.make(.created, json) }
        return JSONResponse.make(.ok, json, headers: [.idempotentReplayed: "true"])
    }

    private func get(_ request: Request, context: CoordinatorRequestContext) async throws -> Response {
        let readsAll = context.allows(.read)
        if !readsAll { try context.require(.submit, for: "read workflows") }
        let id = try Self.workflowID(context)
        let record = try await storage(context) { try await store.get(id) }
        // As for tasks: a submit-only token sees its own workflows, another's is "not found".
        guard let record, readsAll || record.summary.submittedBy == context.token?.name else {
            throw APIError.notFound("no workflow with id \(id)")
        }
        return JSONResponse.make(.ok, Self.json(record))
    }

    private func list(_ request: Request, context: CoordinatorRequestContext) async throws -> Response {
        try context.require(.read, for: "list workflows")
        let query = request.uri.queryParameters
        let limit = try RequestReading.limit(request, defaultLimit: Self.defaultLimit, maxLimit: Self.maxLimit)
        var status: WorkflowStatus?
        if let text = query["status"] {
            guard let parsed = WorkflowStatus(rawValue: String(text)) else {
                throw APIError.badRequest(
                    "status: must be one of \(WorkflowStatus.allCases.map(\.rawValue).joined(separator: ", "))", code: "invalid_field")
            }
            status = parsed
        }
        var cursor: WorkflowID?
        if let text = query["cursor"] {
            guard let parsed = WorkflowID(text) else { throw APIError.badRequest("cursor: not a cursor this API gave", code: "invalid_field") }
            cursor = parsed
        }
        let name = query["name"].map(String.init)
        let page = try await storage(context) { try await store.list(status: status, name: name, before: cursor, limit: limit) }
        var json = "{\"workflows\":["
        for (index, workflow) in page.workflows.enumerated() {
            if index > 0 { json += "," }
            json += Self.json(workflow)
        }
        json += "],\"next_cursor\":\(page.next.map { "\"\($0)\"" } ?? "null")}"
        return JSONResponse.make(.ok, json)
    }

    /// Cancels every node that has not ended: the started ones' ids go into their queues' cancelled sets
    /// first (their agents stop them, a queued entry is dropped when taken), then one transaction marks
    /// them and the workflow cancelled. A node a join queued meanwhile is told afterwards.
    private func cancel(_ request: Request, context: CoordinatorRequestContext) async throws -> Response {
        try context.require(.admin, for: "cancel a workflow")
        let id = try Self.workflowID(context)
        context.logAdminAction("cancel", target: "workflow \(id)")
        let cancelled = try await storage(context) { try await actions.cancelWorkflow(id) }
        return JSONResponse.make(.ok, "{\"id\":\(id.rawValue),\"status\":\"cancelled\",\"cancelled_nodes\":\(cancelled)}")
    }

    /// Runs the nodes that failed, died, were cancelled or were skipped again; succeeded nodes keep
    /// their results.
    private func retry(_ request: Request, context: CoordinatorRequestContext) async throws -> Response {
        try context.require(.admin, for: "retry a workflow")
        let id = try Self.workflowID(context)
        context.logAdminAction("retry", target: "workflow \(id)")
        let advance = try await storage(context, retrying: true) { try await actions.retryWorkflow(id) }
        return JSONResponse.make(.ok, "{\"id\":\(id.rawValue),\"status\":\"running\",\"started_nodes\":\(advance.queued.count)}")
    }

    /// - Parameter retrying: whether the refused action was a retry (else a cancel, which only a running
    ///   workflow takes).
    static func apiError(_ error: WorkflowActionError, retrying: Bool) -> APIError {
        switch (error, retrying) {
        case (.notFound, _): .notFound(error.description)
        case (.wrongStatus, false): .conflict("already_finished", error.description)
        case (.wrongStatus(_, .running), true): .conflict("workflow_running", "\(error); cancel it first, or wait for it to end")
        case (.wrongStatus(_, .succeeded), true): .conflict("nothing_to_retry", "\(error): every node succeeded")
        case (.wrongStatus, true): .conflict("already_finished", error.description)
        case (.expiring, _): .conflict("expiring", error.description)
        }
    }

    static func workflowID(_ context: CoordinatorRequestContext) throws -> WorkflowID {
        guard let text = context.parameters.get("id"), let id = WorkflowID(text) else {
            throw APIError.notFound("no workflow with id '\(context.parameters.get("id") ?? "")'")
        }
        return id
    }

    private func storage<T: Sendable>(
        _ context: CoordinatorRequestContext, retrying: Bool = false, _ body: () async throws -> T
    ) async throws -> T {
        do {
            return try await body()
        } catch let error as APIError {
            throw error
        } catch let error as WorkflowActionError {
            throw Self.apiError(error, retrying: retrying)
        } catch {
            let apiError = APIError.from(storage: error, retryAfterSeconds: retryAfterSeconds)
            if apiError.status == .internalServerError {
                context.logger.error("a workflow request failed", metadata: ["error": "\(error)"])
            }
            throw apiError
        }
    }

    private static func string(_ value: String?) -> String { JSONResponse.string(value) }

    static func json(_ workflow: WorkflowSummary) -> String {
        "{\"id\":\(workflow.id.rawValue),\"name\":\(string(workflow.name)),\"status\":\"\(workflow.status.rawValue)\","
            + "\"node_count\":\(workflow.nodeCount),\"correlation_id\":\(string(workflow.correlationID)),"
            + "\"idempotency_key\":\(string(workflow.idempotencyKey)),\"created_at\":\(string(workflow.createdAt)),"
            + "\"updated_at\":\(string(workflow.updatedAt)),\"finished_at\":\(string(workflow.finishedAt))}"
    }

    static func json(_ record: WorkflowRecord) -> String {
        var counts: [TaskStatus: Int] = [:]
        for node in record.nodes { counts[node.status, default: 0] += 1 }
        var json = String(json(record.summary).dropLast())
        json += ",\"counts\":{"
        json += TaskStatus.allCases.filter { counts[$0] != nil }.map { "\"\($0.rawValue)\":\(counts[$0]!)" }.joined(separator: ",")
        json += "},\"nodes\":["
        json.reserveCapacity(json.utf8.count + record.nodes.count * 300)
        for (index, node) in record.nodes.enumerated() {
            if index > 0 { json += "," }
            json += "{\"key\":\(string(node.key)),\"task_id\":\(node.taskID.rawValue),\"type\":\(string(node.type)),"
            json += "\"queue\":\(string(node.queue)),\"status\":\"\(node.status.rawValue)\",\"attempts\":\(node.attempts),"
            json += "\"depends_on\":[\(node.dependsOn.map { string($0) }.joined(separator: ","))],"
            json += "\"on_dependency_failure\":\"\(node.onDependencyFailure.rawValue)\",\"error\":\(string(node.error)),"
            json += "\"created_at\":\(string(node.createdAt)),\"updated_at\":\(string(node.updatedAt)),"
            json += "\"started_at\":\(string(node.startedAt)),\"finished_at\":\(string(node.finishedAt))}"
        }
        return json + "]}"
    }
}
