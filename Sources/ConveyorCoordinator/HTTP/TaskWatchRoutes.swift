import ConveyorCore
import ConveyorPostgres
import Foundation
import Hummingbird
import ConveyorObservability
import Logging

/// What a task tells its caller besides its current state: `GET /v1/tasks/{id}/events` (the history,
/// paginated), `GET /v1/tasks/{id}/stream` (the same items live, as Server-Sent Events) and the
/// long-poll `GET /v1/tasks/{id}?wait=30s` (``waitUntilTerminal(_:for:)``).
///
/// Live reads cost nothing while nothing changes: each stream or wait sleeps on its ``ChangeSignal``
/// from the ``TaskWatchHub`` and reads PostgreSQL only when its task changed.
struct TaskWatchRoutes: Sendable {
    let store: TaskStore
    let hub: TaskWatchHub
    let retryAfterSeconds: Int

    /// Items per page of `/events` unless `limit` says otherwise, and the most it may say.
    static let defaultPageSize = 100
    static let maximumPageSize = 1000
    /// The longest `?wait=`.
    static let maximumWait = Duration.seconds(60)
    /// A comment line this often keeps an idle stream open through proxies and detects a gone client.
    static let keepAlive = Duration.seconds(15)
    /// Rows read per query while a stream catches up.
    static let streamBatch = 500

    func register(on group: RouterGroup<CoordinatorRequestContext>) {
        group.get("tasks/{id}/events") { request, context in try await events(request, context: context) }
        group.get("tasks/{id}/stream") { request, context in try await stream(request, context: context) }
    }

    // MARK: - History

    private func events(_ request: Request, context: CoordinatorRequestContext) async throws -> Response {
        let id = try Self.taskID(context)
        let limit = try Self.pageSize(request.uri.queryParameters.get("limit"))
        let cursor = try Self.cursor(request.uri.queryParameters.get("cursor"), name: "cursor")
        let task = try await readable(id, context: context)
        var items: [TimelineItem] = cursor == nil ? [TaskTimeline.queued(task)] : []
        let rows = try await storage { try await store.history(of: id, after: cursor ?? TaskTimeline.queuedCursor, limit: limit + 1) }
        var next: String?
        for (index, row) in rows.enumerated() {
            let rowItems = TaskTimeline.items(row)
            // A page ends between rows, never inside one; a row alone may fill a tiny page.
            if index == limit || (items.count + rowItems.count > limit && index > 0) {
                next = rows[index - 1].cursor.description
                break
            }
            items.append(contentsOf: rowItems)
        }
        var json = "{\"task_id\":\(id.rawValue),\"events\":["
        json += items.map(\.json).joined(separator: ",")
        json += "],\"next_cursor\":"
        if let next { JSONValue.writeString(next, into: &json) } else { json += "null" }
        json += "}"
        return JSONResponse.make(.ok, json)
    }

    // MARK: - Live stream

    private func stream(_ request: Request, context: CoordinatorRequestContext) async throws -> Response {
        let id = try Self.taskID(context)
        // EventSource sends Last-Event-ID when it reconnects; `after` is the same for clients that cannot.
        let resume = try Self.cursor(request.headers[.lastEventID] ?? request.uri.queryParameters.get("after"), name: "Last-Event-ID")
        let task = try await readable(id, context: context)
        if let resume, task.status.isTerminal {
            let rest = try await storage { try await self.store.history(of: id, after: resume, limit: 1) }
            // Nothing left to tell: 204 tells an EventSource to stop reconnecting.
            if rest.isEmpty { return Response(status: .noContent) }
        }
        let store = self.store
        let hub = self.hub
        let logger = context.logger
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache", .init("X-Accel-Buffering")!: "no"]
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            try await hub.watching(id) { changes in
                var follower = TaskFollower(after: resume ?? TaskTimeline.queuedCursor)
                var out = "retry: 1000\n\n"
                if resume == nil { out += Self.frame(TaskTimeline.queued(task), id: TaskTimeline.queuedCursor.description) }
                try await writer.write(ByteBuffer(string: out))
                var readRow = true
                while !Task.isCancelled && !changes.isStopped {
                    let rows = try await store.history(of: id, after: follower.readFrom, limit: Self.streamBatch)
                    var frames = follower.take(rows)
                    if rows.count == Self.streamBatch {
                        try await writer.write(ByteBuffer(string: frames))
                        continue
                    }
                    // The row decides whether a terminal step is the end (a redrive follows a `dead`), and
                    // is read at the start, when nothing new came, and after a terminal step.
                    if readRow || frames.isEmpty || follower.lastWasTerminal {
                        guard let current = try await store.get(id) else { break }  // dropped by retention
                        if current.status.isTerminal {
                            // Its history step commits with the row: read once more, then end.
                            frames += follower.take(try await store.history(of: id, after: follower.readFrom, limit: Self.streamBatch))
                            if !follower.lastWasTerminal { frames += follower.outcome(current) }
                            try await writer.write(ByteBuffer(string: frames))
                            break
                        }
                    }
                    readRow = false
                    if !frames.isEmpty { try await writer.write(ByteBuffer(string: frames)) }
                    while await !changes.wait(timeout: Self.keepAlive) {
                        try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    }
                }
                try await writer.finish(nil)
            }
            logger.debug("task stream ended", metadata: [LogKeys.taskID: "\(id)"])
        })
    }

    /// One SSE event: `id` the stream's position after it, `event` the item's kind, `data` its JSON
    /// (a single line).
    static func frame(_ item: TimelineItem, id: String) -> String {
        "id: \(id)\nevent: \(item.kind)\ndata: \(item.json)\n\n"
    }

    // MARK: - Long-poll

    /// The task once it is terminal, or as it is when `wait` runs out: Celery's `result.get(timeout=…)`.
    func waitUntilTerminal(_ task: TaskRecord, for wait: Duration) async throws -> TaskRecord {
        guard !task.status.isTerminal, wait > .zero else { return task }
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: wait)
        return try await hub.watching(task.id) { changes in
            // Subscribed first, read second: a change in between is not missed.
            var current = try await storage { try await store.get(task.id) } ?? task
            while !current.status.isTerminal, !changes.isStopped {
                let left = clock.now.duration(to: deadline)
                guard left > .zero, await changes.wait(timeout: left) else { break }
                current = try await storage { try await store.get(task.id) } ?? current
            }
            return current
        }
    }

    /// `?wait=`: a duration up to ``maximumWait`` (`30s`, `1.5`, `500ms`).
    static func waitDuration(_ text: String?) throws(APIError) -> Duration? {
        guard let text else { return nil }
        guard let wait = Duration(configurationText: text), wait <= maximumWait else {
            throw .badRequest("wait: a duration up to \(maximumWait.seconds)s, such as 30s or 500ms", code: "invalid_wait")
        }
        return wait
    }

    // MARK: - Shared

    /// The task, if the request may read it (a submit-only token reads only its own tasks).
    private func readable(_ id: TaskID, context: CoordinatorRequestContext) async throws -> TaskRecord {
        let readsAll = context.allows(.read)
        if !readsAll { try context.require(.submit, for: "read tasks") }
        let record = try await storage { try await store.get(id) }
        guard let record, readsAll || record.submittedBy == context.token?.name else { throw APIError.notFound("no task with id \(id)") }
        return record
    }

    private func storage<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw APIError.from(storage: error, retryAfterSeconds: retryAfterSeconds)
        }
    }

    static func taskID(_ context: CoordinatorRequestContext) throws(APIError) -> TaskID {
        guard let text = context.parameters.get("id"), let id = TaskID(text) else {
            throw .notFound("no task with id '\(context.parameters.get("id") ?? "")'")
        }
        return id
    }

    static func pageSize(_ text: String?) throws(APIError) -> Int {
        guard let text else { return defaultPageSize }
        guard let limit = Int(text), (1...maximumPageSize).contains(limit) else {
            throw .badRequest("limit: an integer from 1 to \(maximumPageSize)", code: "invalid_limit")
        }
        return limit
    }

    static func cursor(_ text: String?, name: String) throws(APIError) -> HistoryCursor? {
        guard let text, !text.isEmpty else { return nil }
        guard let cursor = HistoryCursor(text) else {
            throw .badRequest("\(name): not a cursor this API returned", code: "invalid_cursor")
        }
        return cursor
    }
}
