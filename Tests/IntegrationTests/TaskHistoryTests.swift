import ConveyorAgent
import ConveyorCore
import ConveyorTesting
import Testing

@Suite("Event history: GET /v1/tasks/{id}/events")
struct TaskHistoryTests {
    @Test("a task retried once tells its whole story in order: queued, dispatched, running, retrying with its error and due time, then again to succeeded")
    func retriedTask() async throws {
        let registry = TaskTypeRegistry([TaskTypeDefinition(name: "flaky", handler: "fail", backoffBase: .milliseconds(50), backoffMax: .milliseconds(100))])
        let stack = try await Stack.start(registry: registry)
        let id = try await stack.submit("flaky", params: #"{"times":1}"#)
        #expect(try await stack.waitUntilTerminal([id])[id] == .succeeded)
        let items = try await stack.history(id)
        #expect(items.map { $0["kind"]?.stringValue ?? "?" } == [
            "queued", "dispatched", "running", "retrying", "dispatched", "running", "succeeded",
        ])
        #expect(items.map { $0["attempt"]?.intValue ?? -1 } == [0, 1, 1, 1, 2, 2, 2])
        let retrying = items[3]
        #expect(retrying["error"]?.stringValue?.contains("on purpose") == true)
        #expect(retrying["next_attempt_at"]?.stringValue != nil)
        #expect(retrying["agent"]?.stringValue == "agent-0")
        #expect(items[6]["result"]?["attempt"]?.intValue == 2)
        let times = items.compactMap { $0["at"]?.stringValue }
        #expect(times == times.sorted(), "oldest first")
        try await stack.stop()
    }

    @Test("pages follow next_cursor without gaps or repeats, never splitting a step's row; a bad cursor or limit is a 400")
    func pagination() async throws {
        let stack = try await Stack.start()
        // Progress is kept about once a second: a task of 4.8 s leaves two milestones even when a loaded
        // machine stalls it for a second (2.4 s once left one).
        let id = try await stack.submit("steps", params: #"{"steps":6,"ms":800}"#)
        #expect(try await stack.waitUntilTerminal([id])[id] == .succeeded)
        let whole = try await stack.history(id, limit: 1000)
        #expect(whole.filter { $0["kind"]?.stringValue == "progress" }.count >= 2, "progress milestones are part of the story")
        #expect(whole.last?["kind"]?.stringValue == "succeeded")
        for limit in [1, 2, 3] {
            #expect(try await stack.history(id, limit: limit) == whole, "pages of \(limit)")
        }
        #expect(try await stack.get("/v1/tasks/\(id)/events?cursor=nonsense").status == 400)
        #expect(try await stack.get("/v1/tasks/\(id)/events?limit=0").json?["error"]?["code"]?.stringValue == "invalid_limit")
        #expect(try await stack.get("/v1/tasks/999999999/events").status == 404)
        try await stack.stop()
    }

    @Test("a cancel through the API is a step of the history, made by the api")
    func cancelIsRecorded() async throws {
        let stack = try await Stack.start(agents: 0)
        let id = try await stack.submit("noop")
        #expect(try await stack.postRetryingUnavailable("/v1/tasks/\(id)/cancel", "{}").status == 200)
        let items = try await stack.history(id)
        #expect(items.map { $0["kind"]?.stringValue ?? "?" } == ["queued", "cancelled"])
        #expect(items[1]["agent"]?.stringValue == "api" && items[1]["error"]?.stringValue == "cancelled")
        try await stack.stop()
    }

    /// Reports and fails without suspending, as the built-in instant handlers run (no `running` of its own).
    private struct InstantReporter: TaskHandler {
        var returnsWithoutSuspending: Bool { true }
        func handle(_ task: TaskContext) async throws -> JSONValue? {
            try task.reportProgress(message: "at once")
            throw TaskFailure("fails at once, on purpose")
        }
    }

    @Test("an attempt's steps within one millisecond keep the order they happened in: running, its report, then its outcome, each dated after the one before")
    func sameMillisecondStepsKeepTheirOrder() async throws {
        let registry = TaskTypeRegistry([
            TaskTypeDefinition(name: "quick", maxAttempts: 1, handler: "quick"),
            TaskTypeDefinition(name: "instant", maxAttempts: 1, handler: "instant"),
        ])
        var handlers = HandlerSet.builtIns
        handlers.register("quick") { task in
            try task.reportProgress(message: "at once")
            throw TaskFailure("fails at once, on purpose")
        }
        handlers.register("instant", InstantReporter())
        let stack = try await Stack.start(registry: registry, handlers: handlers)
        var ids: [Int64] = []
        for type in ["quick", "instant"] {
            for _ in 0..<5 { ids.append(try await stack.submit(type)) }
        }
        let outcomes = try await stack.waitUntilTerminal(ids)
        for id in ids {
            #expect(outcomes[id] == .dead)
            let items = try await stack.history(id)
            #expect(items.map { $0["kind"]?.stringValue ?? "?" } == ["queued", "dispatched", "running", "progress", "dead"], "task \(id)")
            let times = items.suffix(3).compactMap { $0["at"]?.stringValue }
            #expect(times.count == 3 && times[0] < times[1] && times[1] < times[2], "task \(id): \(times)")
        }
        try await stack.stop()
    }
}
