import ConveyorCore
import ConveyorPostgres
import ConveyorRedis
import Foundation
import Hummingbird
import Mustache

/// Builds and renders the console's pages. Each reads what it shows in a bounded number of indexed
/// queries and O(1) Redis commands, so a page costs the same with ten million tasks stored.
struct ConsolePages: Sendable {
    let library: MustacheLibrary
    let store: TaskStore
    let workflowStore: WorkflowStore
    let scheduleStore: ScheduleStore
    let pauseStore: PauseStore
    let registry: TaskTypeRegistry
    let redis: any RedisClient
    let keys: RedisKeys
    let throughput: ThroughputHistory
    /// Grafana's base URL for the task-logs links (nil: no links).
    let grafanaURL: String?
    let retryAfterSeconds: Int

    static let pageSize = 50
    /// Most rows the capped counts (scheduled per queue, dead per type) walk: each is a row read by
    /// primary key, so this bounds the page (2,000 kept the dead-letter page near 15 ms at 10 million tasks).
    static let countCap = 2_000
    static let historyLimit = 200

    // MARK: Frame

    /// What the header needs: the signed-in token, its scope, the CSRF token, the current tab.
    func frame(title: String, signedIn: Bool, context: CoordinatorRequestContext? = nil, tab: String? = nil, request: Request? = nil) -> [String: Any] {
        var page: [String: Any] = ["title": title, "signedIn": signedIn]
        if let context {
            page["who"] = context.token?.name ?? "authentication disabled"
            page["admin"] = context.allows(.admin)
            page["csrf"] = context.consoleSession?.csrf ?? ""
        }
        if let tab { page["nav" + tab] = true }
        if let request {
            if let notice = request.uri.queryParameters["notice"] { page["notice"] = String(notice) }
            if let problem = request.uri.queryParameters["problem"] { page["problem"] = String(problem) }
        }
        return page
    }

    func render(_ template: String, _ page: [String: Any], status: HTTPResponse.Status = .ok) throws -> Response {
        guard let html = library.render(page, withTemplate: template) else {
            throw APIError(.internalServerError, code: "internal", "console template '\(template)' is missing")
        }
        return Response(
            status: status, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    func message(_ context: CoordinatorRequestContext, status: HTTPResponse.Status, heading: String, text: String) throws -> Response {
        var page = frame(title: heading, signedIn: true, context: context)
        page["heading"] = heading
        page["text"] = text
        return try render("message", page, status: status)
    }

    func forbidden(_ context: CoordinatorRequestContext) throws -> Response {
        try message(context, status: .forbidden, heading: "Not allowed",
                    text: "The token '\(context.token?.name ?? "")' does not have the admin scope: it can read, not act.")
    }

    func csrfRefused() throws -> Response {
        var page = frame(title: "Form expired", signedIn: false)
        page["heading"] = "This form has expired"
        page["text"] = "The page was opened in another session. Go back, reload it and try again."
        return try render("message", page, status: .forbidden)
    }

    /// Runs a read; PostgreSQL or Redis being away renders a 503 page instead of failing the request.
    private func reading(_ context: CoordinatorRequestContext, _ body: () async throws -> Response) async throws -> Response {
        guard context.allows(.read) else {
            return try message(context, status: .forbidden, heading: "Not allowed", text: "This token cannot read tasks.")
        }
        do {
            return try await body()
        } catch let error as APIError where error.status.code < 500 {
            return try message(context, status: error.status, heading: "Cannot show this", text: error.message)
        } catch {
            context.logger.warning("console page failed", metadata: ["error": "\(error)"])
            var response = try message(context, status: .serviceUnavailable, heading: "Storage unavailable",
                                       text: "PostgreSQL or Redis did not answer; try again shortly.")
            response.headers[.retryAfter] = String(retryAfterSeconds)
            return response
        }
    }

    // MARK: Overview

    func overview(_ request: Request, _ context: CoordinatorRequestContext) async throws -> Response {
        try await reading(context) {
            async let states = QueueState.read(registry.queues, registry: registry, redis: redis, keys: keys)
            async let agentsReply = redis.send(RedisCommand("HGETALL", [keys.agents]))
            async let scheduled = store.counts(of: .scheduled, by: .queue, cap: Self.countCap)
            let scheduledByQueue = Dictionary(try await scheduled.map { ($0.value, $0.count) }, uniquingKeysWith: +)
            var page = frame(title: "Overview", signedIn: true, context: context, tab: "Overview", request: request)
            page["queues"] = try await states.map { state -> [String: Any] in
                let paused = state.paused.contains("*") ? "whole queue" : state.paused.sorted().joined(separator: ", ")
                var row: [String: Any] = [
                    "name": state.queue, "ready": state.totalBacklog, "running": state.inFlight, "delayed": state.delayed,
                    "dead": state.dead, "scheduled": scheduledByQueue[state.queue] ?? 0,
                    "toggle": state.paused.contains("*") ? "resume" : "pause",
                    "toggleLabel": state.paused.contains("*") ? "Resume" : "Pause",
                ]
                if !paused.isEmpty { row["paused"] = paused }
                return row
            }
            let now = WallClock.nowMillis()
            let flat = try await agentsReply.array ?? []
            var agents: [[String: Any]] = []
            let decoder = JSONDecoder()
            for index in stride(from: 1, to: flat.count, by: 2) {
                guard let text = flat[index].string, let beat = try? decoder.decode(AgentHeartbeat.self, from: Data(text.utf8)),
                    beat.expiresAt > now
                else { continue }
                let running = beat.inFlight.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { "\($0.key) × \($0.value)" }
                agents.append([
                    "id": beat.id, "queues": beat.queues.joined(separator: ", "), "concurrency": beat.concurrency,
                    "inFlight": beat.inFlight.values.reduce(0, +), "running": running.isEmpty ? "idle" : running.joined(separator: ", "),
                ])
            }
            page["agents"] = agents.sorted { ($0["id"] as? String ?? "") < ($1["id"] as? String ?? "") }
            page["hasAgents"] = !agents.isEmpty
            let window = throughput.window(nowMillis: now)
            let peak = max(1, window.map { $0.succeeded + $0.unsuccessful }.max() ?? 1)
            page["chart"] = window.map { bucket -> [String: Any] in
                [
                    "okHeight": bucket.succeeded * 88 / peak, "badHeight": bucket.unsuccessful * 88 / peak,
                    "label": "\(UTCTime.format(millis: bucket.startMillis)): \(bucket.succeeded) succeeded, \(bucket.unsuccessful) not",
                ]
            }
            let lastMinute = window.suffix(6).reduce(0) { $0 + $1.succeeded + $1.unsuccessful }
            page["rateText"] = "\(lastMinute) tasks ended in the last minute"
            page["scheduledCap"] = Self.countCap
            return try render("overview", page)
        }
    }

    // MARK: Tasks

    func tasks(_ request: Request, _ context: CoordinatorRequestContext) async throws -> Response {
        try await reading(context) {
            let pairs = TaskFilterParser.pairs(query: request).filter { !$0.value.isEmpty && $0.name != "notice" && $0.name != "problem" }
            var filter: TaskFilter
            do {
                filter = try TaskFilterParser.filter(pairs, extra: ["cursor", "limit"])
            } catch let error as APIError {
                var page = tasksPage(request, context, pairs: pairs, filter: TaskFilter())
                page["problem"] = error.message
                page["emptyText"] = "Fix the search above."
                return try render("tasks", page, status: .badRequest)
            }
            if !context.allows(.read) { filter.submittedBy = context.token?.name }
            let cursor = try TaskFilterParser.cursor(pairs.first { $0.name == "cursor" }?.value)
            let result = try await store.search(filter, limit: Self.pageSize, before: cursor)
            var page = tasksPage(request, context, pairs: pairs, filter: filter)
            page["tasks"] = result.tasks.map(Self.row)
            page["emptyText"] = cursor == nil ? "No task matches." : "No task matches in this stretch of history."
            let base = pairs.filter { $0.name != "cursor" }
            if let next = result.nextCursor {
                page["nextURL"] = "/ui/tasks?" + ConsoleForm(pairs: base + [("cursor", next.description)]).encoded
                page["partial"] = result.tasks.count < Self.pageSize
            }
            if cursor != nil { page["firstURL"] = "/ui/tasks?" + ConsoleForm(pairs: base).encoded }
            return try render("tasks", page)
        }
    }

    private func tasksPage(_ request: Request, _ context: CoordinatorRequestContext, pairs: [(name: String, value: String)], filter: TaskFilter) -> [String: Any] {
        var page = frame(title: "Tasks", signedIn: true, context: context, tab: "Tasks", request: request)
        func value(_ name: String) -> String { pairs.first { $0.name == name }?.value ?? "" }
        page["filter"] = [
            "type": value("type"), "queue": value("queue"), "tag": value("tag"), "correlation_id": value("correlation_id"),
            "created_after": value("created_after"), "created_before": value("created_before"), "error": value("error"),
        ]
        page["statuses"] = TaskStatus.allCases.map { ["value": $0.rawValue, "selected": filter.statuses.contains($0)] as [String: Any] }
        page["types"] = registry.types.keys.sorted()
        page["queueNames"] = registry.queues
        let query = pairs.filter { $0.name != "cursor" }
        page["query"] = ConsoleForm(pairs: query).encoded
        page["hasFilter"] = !filter.isEmpty
        page["pageSize"] = Self.pageSize
        return page
    }

    static func row(_ task: TaskSummary) -> [String: Any] {
        var row: [String: Any] = [
            "id": task.id.description, "status": task.status.rawValue, "type": task.type, "queue": task.queue,
            "attempts": task.attempts, "maxAttempts": task.maxAttempts, "createdAt": task.createdAt,
            "finishedAt": task.finishedAt ?? "", "error": task.error ?? "",
        ]
        if let tags = task.tags, tags != "{}" { row["tags"] = tags }
        return row
    }

    /// The header's search box: a task id opens that task; anything else lists the tasks of that
    /// correlation id.
    func find(_ request: Request, _ context: CoordinatorRequestContext) async throws -> Response {
        let text = (request.uri.queryParameters["q"].map(String.init) ?? "").trimmingCharacters(in: .whitespaces)
        if let id = TaskID(text) { return ConsoleRoutes.redirect("/ui/tasks/\(id)") }
        guard !text.isEmpty else { return ConsoleRoutes.redirect("/ui/tasks") }
        return ConsoleRoutes.redirect("/ui/tasks?correlation_id=\(ConsoleForm.encode(text))")
    }

    func task(_ request: Request, _ context: CoordinatorRequestContext) async throws -> Response {
        try await reading(context) {
            guard let id = context.parameters.get("id").flatMap({ TaskID($0) }) else { throw APIError.notFound("no such task") }
            async let recordRead = store.get(id)
            async let historyRead = store.history(of: id, after: HistoryCursor(atMillis: 0, eventID: ""), limit: Self.historyLimit + 1)
            guard let record = try await recordRead, context.allows(.read) || record.submittedBy == context.token?.name else {
                throw APIError.notFound("no task with id \(id)")
            }
            let history = try await historyRead
            var page = frame(title: "Task \(id)", signedIn: true, context: context, tab: "Tasks", request: request)
            page["id"] = id.description
            page["status"] = record.status.rawValue
            page["type"] = record.type
            page["queue"] = record.queue
            page["attempts"] = record.attempts
            page["maxAttempts"] = record.maxAttempts
            page["priority"] = record.priority.name
            page["correlationID"] = record.correlationID
            page["createdAt"] = record.createdAt
            for (key, value) in [("idempotencyKey", record.idempotencyKey), ("runAt", record.runAt), ("startedAt", record.startedAt),
                                 ("finishedAt", record.finishedAt), ("submittedBy", record.submittedBy), ("error", record.error)] {
                if let value { page[key] = value }
            }
            if let workflow = record.workflowID { page["workflowID"] = String(workflow) }
            page["params"] = Self.pretty(record.params)
            if let result = record.result { page["result"] = Self.pretty(result) }
            if let progress = record.progress { page["progress"] = Self.pretty(progress) }
            let tags = (try? JSONValue.parse(record.tags ?? "{}")).flatMap { value -> [(String, String)]? in
                guard case .object(let members) = value else { return nil }
                return members.compactMap { key, value in value.stringValue.map { (key, $0) } }.sorted { $0.0 < $1.0 }
            } ?? []
            page["tags"] = tags.map { ["key": $0.0, "value": $0.1] }
            page["hasTags"] = !tags.isEmpty
            page["cancellable"] = !record.status.isTerminal
            page["retryable"] = record.status == .dead || (record.status == .failed && record.workflowID != nil)
            page["live"] = !record.status.isTerminal
            page["timeline"] = history.prefix(Self.historyLimit).map { row -> [String: Any] in
                ["at": UTCTime.format(millis: row.atMillis), "status": row.status, "attempt": row.attempt, "agent": row.agent, "detail": row.detail ?? ""]
            }
            page["moreHistory"] = history.count > Self.historyLimit
            page["historyLimit"] = Self.historyLimit
            if let logs = logsURL(record) { page["logsURL"] = logs }
            return try render("task", page)
        }
    }

    /// The task-logs dashboard (Grafana/dashboards/conveyor-task-logs.json) at this task's correlation
    /// id, over its lifetime give or take a minute.
    func logsURL(_ record: TaskRecord) -> String? {
        guard let base = grafanaURL else { return nil }
        let from = (RFC3339.parseMillis(record.createdAt) ?? 0) - 60_000
        let to = record.finishedAt.flatMap(RFC3339.parseMillis).map { String($0 + 60_000) } ?? "now"
        let trimmed = base.hasSuffix("/") ? String(base.dropLast()) : base
        return "\(trimmed)/d/conveyor-task-logs/conveyor-task-logs?var-correlation_id=\(ConsoleForm.encode(record.correlationID))"
            + "&var-task_id=\(record.id)&from=\(from)&to=\(to)"
    }

    static func pretty(_ json: String) -> String {
        guard let data = json.data(using: .utf8), let object = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]),
            let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes])
        else { return json }
        return String(decoding: pretty, as: UTF8.self)
    }

    // MARK: Dead letters

    func dead(_ request: Request, _ context: CoordinatorRequestContext) async throws -> Response {
        try await reading(context) {
            let query = request.uri.queryParameters
            var filter = TaskFilter()
            filter.statuses = [.dead]
            filter.type = query["type"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
            filter.queue = query["queue"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
            let cursor = try TaskFilterParser.cursor(query["cursor"].map(String.init))
            async let counts = store.counts(of: .dead, by: .type, cap: Self.countCap)
            async let result = store.search(filter, limit: Self.pageSize, before: cursor)
            var page = frame(title: "Dead letters", signedIn: true, context: context, tab: "Dead", request: request)
            page["types"] = try await counts.map { ["type": $0.value, "count": $0.count] as [String: Any] }
            let found = try await result
            page["tasks"] = found.tasks.map(Self.row)
            page["countCap"] = Self.countCap
            if let type = filter.type { page["typeName"] = type }
            if let next = found.nextCursor {
                var pairs: [(name: String, value: String)] = [("cursor", next.description)]
                if let type = filter.type { pairs.append(("type", type)) }
                if let queue = filter.queue { pairs.append(("queue", queue)) }
                page["nextURL"] = "/ui/dead?" + ConsoleForm(pairs: pairs).encoded
            }
            return try render("dead", page)
        }
    }

    // MARK: Workflows

    func workflows(_ request: Request, _ context: CoordinatorRequestContext) async throws -> Response {
        try await reading(context) {
            let query = request.uri.queryParameters
            let status = query["status"].flatMap { WorkflowStatus(rawValue: String($0)) }
            let name = query["name"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
            let cursor = query["cursor"].flatMap { WorkflowID(String($0)) }
            let result = try await workflowStore.list(status: status, name: name, before: cursor, limit: Self.pageSize)
            var page = frame(title: "Workflows", signedIn: true, context: context, tab: "Workflows", request: request)
            page["workflows"] = result.workflows.map { workflow -> [String: Any] in
                [
                    "id": workflow.id.description, "name": workflow.name, "status": workflow.status.rawValue,
                    "statusClass": Self.statusClass(workflow.status), "nodeCount": workflow.nodeCount,
                    "createdAt": workflow.createdAt, "finishedAt": workflow.finishedAt ?? "",
                ]
            }
            page["statuses"] = WorkflowStatus.allCases.map { ["value": $0.rawValue, "selected": $0 == status] as [String: Any] }
            page["name"] = name ?? ""
            if let next = result.next {
                var pairs: [(name: String, value: String)] = [("cursor", next.description)]
                if let status { pairs.append(("status", status.rawValue)) }
                if let name { pairs.append(("name", name)) }
                page["nextURL"] = "/ui/workflows?" + ConsoleForm(pairs: pairs).encoded
            }
            return try render("workflows", page)
        }
    }

    func workflow(_ request: Request, _ context: CoordinatorRequestContext) async throws -> Response {
        try await reading(context) {
            guard let id = context.parameters.get("id").flatMap({ WorkflowID($0) }), let record = try await workflowStore.get(id) else {
                throw APIError.notFound("no such workflow")
            }
            let summary = record.summary
            var page = frame(title: "Workflow \(id)", signedIn: true, context: context, tab: "Workflows", request: request)
            page["id"] = id.description
            page["name"] = summary.name
            page["status"] = summary.status.rawValue
            page["statusClass"] = Self.statusClass(summary.status)
            page["running"] = summary.status == .running
            page["retryable"] = summary.status == .failed || summary.status == .cancelled
            page["createdAt"] = summary.createdAt
            if let finished = summary.finishedAt { page["finishedAt"] = finished }
            page["correlationID"] = summary.correlationID
            page["nodes"] = record.nodes.map { node -> [String: Any] in
                [
                    "key": node.key, "taskID": node.taskID.description, "type": node.type, "status": node.status.rawValue,
                    "dependsOn": node.dependsOn.joined(separator: ", "), "policy": node.onDependencyFailure.rawValue,
                    "attempts": node.attempts, "error": node.error ?? "",
                ]
            }
            return try render("workflow", page)
        }
    }

    static func statusClass(_ status: WorkflowStatus) -> String {
        switch status {
        case .running: "running"
        case .succeeded: "succeeded"
        case .failed: "failed"
        case .cancelled: "cancelled"
        }
    }

    // MARK: Schedules and pauses

    func schedules(_ request: Request, _ context: CoordinatorRequestContext) async throws -> Response {
        try await reading(context) {
            async let ticks = scheduleStore.lastTicks()
            async let recorded = pauseStore.all()
            let lastTicks = try await ticks
            let now = WallClock.nowMillis()
            var page = frame(title: "Schedules", signedIn: true, context: context, tab: "Schedules", request: request)
            page["schedules"] = registry.schedules.map { schedule -> [String: Any] in
                [
                    "name": schedule.name, "cron": schedule.cron.expression, "timeZone": schedule.cron.timeZone, "type": schedule.type,
                    "queue": schedule.queue ?? registry[schedule.type]?.queue ?? "", "missed": schedule.missedTicks.rawValue,
                    "lastTick": lastTicks[schedule.name].map { UTCTime.format(millis: $0) } ?? "never",
                    "nextTick": schedule.cron.next(after: max(now, lastTicks[schedule.name] ?? now)).map { UTCTime.format(millis: $0) } ?? "none",
                ]
            }
            page["pauses"] = try await recorded.map { pause -> [String: Any] in
                [
                    "queue": pause.queue, "typeLabel": pause.type ?? "(whole queue)", "since": UTCTime.format(millis: pause.pausedAtMillis),
                    "by": pause.pausedBy ?? "", "resumeAction": pause.type.map { "/ui/types/\(ConsoleForm.encode($0))/resume" }
                        ?? "/ui/queues/\(ConsoleForm.encode(pause.queue))/resume",
                ]
            }
            return try render("schedules", page)
        }
    }
}
