import ConveyorAgent
import ConveyorCore
import ConveyorPostgres
import ConveyorTesting
import Testing

@Suite("Dead letters")
struct DeadLetterTests {
    private let registry = TaskTypeRegistry([
        TaskTypeDefinition(name: "flaky", maxAttempts: 2, handler: "fail", backoffBase: .milliseconds(20), backoffMax: .milliseconds(50)),
        TaskTypeDefinition(name: "other", maxAttempts: 1, handler: "fail", backoffBase: .milliseconds(20), backoffMax: .milliseconds(50)),
    ])

    @Test("a task out of attempts is listed with its error, and a redrive keeps its id and history and lets it finish")
    func deadThenRedriven() async throws {
        let stack = try await Stack.start(registry: registry)
        let id = try await stack.submit("flaky", params: "{\"times\":2}")
        #expect(try await stack.waitUntilTerminal([id])[id] == .dead)

        let list = try await stack.get("/v1/dead")
        #expect(list.status == 200)
        guard case .array(let dead)? = list.json?["dead"] else { throw StackError("list: \(list.body)") }
        #expect(dead.count == 1)
        #expect(dead.first?["id"]?.intValue == id)
        #expect(dead.first?["type"]?.stringValue == "flaky")
        #expect(dead.first?["attempt"]?.intValue == 2)
        #expect(dead.first?["error"]?.stringValue?.contains("on purpose") == true)
        #expect(list.json?["next_cursor"] == .null)

        let retry = try await stack.post("/v1/dead/\(id)/retry", "{}")
        #expect(retry.status == 200)
        #expect(retry.json?["attempt"]?.intValue == 3)
        #expect(try await stack.waitUntilTerminal([id])[id] == .succeeded)
        let task = try await stack.task(id)
        #expect(task["attempts"]?.intValue == 3)
        #expect(task["error"] == .null)
        guard case .array(let after)? = try await stack.get("/v1/dead").json?["dead"] else { throw StackError("list") }
        #expect(after.isEmpty)
        let history = try await stack.coordinator.postgres.withSession { session in
            try session.query("SELECT DISTINCT attempt FROM task_events WHERE task_id = $1 ORDER BY attempt", [String(id)]).rows.compactMap { $0[0] }
        }
        #expect(history == ["1", "2", "3"], "the history of every attempt is kept")
        try await stack.stop()
    }

    @Test("after a redrive, a late replay of the old attempt's dead event does not make the task dead again")
    func lateDeadEventAfterRedriveIsIgnored() async throws {
        let stack = try await Stack.start(registry: registry)
        let id = try await stack.submit("flaky", params: "{\"times\":2}")
        #expect(try await stack.waitUntilTerminal([id])[id] == .dead)
        try await stack.stop()

        let postgres = PostgresClient(configuration: stack.environment.postgres, logger: TestServers.quietLogger)
        defer { postgres.close() }
        let store = TaskStore(client: postgres)
        #expect(try await store.redrive([TaskID(rawValue: id)]) { _ in 1 }.count == 1)
        let now = WallClock.nowMillis()
        func event(_ status: TaskStatus, attempt: Int) -> LifecycleEvent {
            LifecycleEvent(taskID: TaskID(rawValue: id), status: status, attempt: attempt, agent: "a", atMillis: now, startedAtMillis: now,
                           error: status == .dead ? "late" : nil, correlationID: "c", type: "flaky")
        }
        _ = try await EventStore(client: postgres).record([event(.dead, attempt: 2)])
        #expect(try await store.status(of: TaskID(rawValue: id)) == .queued, "the replay of attempt 2 is ignored")
        _ = try await EventStore(client: postgres).record([event(.succeeded, attempt: 3)])
        #expect(try await store.status(of: TaskID(rawValue: id)) == .succeeded, "the redriven attempt still applies")
    }

    @Test("redriving a task that is not dead is 409; an unknown task is 404")
    func redriveErrors() async throws {
        let stack = try await Stack.start()
        let id = try await stack.submit("noop")
        _ = try await stack.waitUntilTerminal([id])
        let notDead = try await stack.post("/v1/dead/\(id)/retry", "{}")
        #expect(notDead.status == 409)
        #expect(notDead.json?["error"]?["code"]?.stringValue == "not_dead")
        #expect(try await stack.post("/v1/dead/987654321/retry", "{}").status == 404)
        #expect(try await stack.get("/v1/dead?limit=0").status == 400)
        try await stack.stop()
    }

    @Test("POST /v1/dead/retry?type= redrives only that type; the list pages with a cursor")
    func redriveAllOfOneTypeAndPaging() async throws {
        let stack = try await Stack.start(registry: registry)
        var flaky: [Int64] = []
        for _ in 0..<3 { flaky.append(try await stack.submit("flaky", params: "{\"times\":2}")) }
        let other = try await stack.submit("other", params: "{\"times\":1}")
        _ = try await stack.waitUntilTerminal(flaky + [other])

        let firstPage = try await stack.get("/v1/dead?type=flaky&limit=2")
        guard case .array(let page1)? = firstPage.json?["dead"], let cursor = firstPage.json?["next_cursor"]?.stringValue else {
            throw StackError("page 1: \(firstPage.body)")
        }
        #expect(page1.count == 2)
        let secondPage = try await stack.get("/v1/dead?type=flaky&limit=2&cursor=\(cursor.replacingOccurrences(of: "/", with: "%2F"))")
        guard case .array(let page2)? = secondPage.json?["dead"] else { throw StackError("page 2: \(secondPage.body)") }
        #expect(page2.count == 1)
        #expect(Set((page1 + page2).compactMap { $0["id"]?.intValue }) == Set(flaky))

        let redriven = try await stack.post("/v1/dead/retry?type=flaky", "{}")
        #expect(redriven.json?["redriven"]?.intValue == 3)
        let statuses = try await stack.waitUntilTerminal(flaky)
        #expect(statuses.values.allSatisfy { $0 == .succeeded })
        #expect(try await stack.task(other)["status"]?.stringValue == "dead")
        try await stack.stop()
    }
}
