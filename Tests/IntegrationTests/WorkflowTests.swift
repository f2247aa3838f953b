import ConveyorAgent
import ConveyorCore
import ConveyorPostgres
import ConveyorTesting
import Foundation
import Synchronization
import Testing

/// What the workflow handlers saw: when each node started and what it was given.
final class WorkflowJournal: Sendable {
    struct Run: Sendable {
        var node: String
        var startedAt: ContinuousClock.Instant
        var dependencies: [String: JSONValue]
    }

    private let state = Mutex<[Run]>([])
    /// How many runs of each node fail before one succeeds (`flaky`).
    private let failuresLeft = Mutex<[String: Int]>([:])

    var runs: [Run] { state.withLock { $0 } }

    func runs(of node: String) -> [Run] { runs.filter { $0.node == node } }

    func failFirst(_ count: Int, of node: String) { failuresLeft.withLock { $0[node] = count } }

    /// `step`: records itself and returns `{"node": <key>}`; `boom` fails for good; `slow` sleeps a minute;
    /// `flaky` fails for good the first times it is told to (see ``failFirst(_:of:)``).
    func handlers() -> HandlerSet {
        var handlers = HandlerSet.builtIns
        let record: @Sendable (TaskContext) -> String = { [self] task in
            let node = task.params["node"]?.stringValue ?? "?"
            state.withLock { $0.append(Run(node: node, startedAt: .now, dependencies: task.dependencies)) }
            return node
        }
        handlers.register("step", ClosureHandler { task in .object(["node": .string(record(task))]) })
        handlers.register("boom", ClosureHandler { task in
            _ = record(task)
            throw TaskFailure.permanent("boom")
        })
        handlers.register("slow", ClosureHandler { task in
            _ = record(task)
            try await Task.sleep(for: .seconds(60))
            return nil
        })
        handlers.register("pause", ClosureHandler { task in
            let node = record(task)
            try await Task.sleep(for: .milliseconds(1500))
            return .object(["node": .string(node)])
        })
        handlers.register("flaky", ClosureHandler { [self] task in
            let node = record(task)
            let fail = failuresLeft.withLock { left -> Bool in
                guard let count = left[node], count > 0 else { return false }
                left[node] = count - 1
                return true
            }
            if fail { throw TaskFailure.permanent("flaky") }
            return .object(["node": .string(node)])
        })
        return handlers
    }

    static let registry = TaskTypeRegistry(
        ["step", "boom", "slow", "flaky", "pause"].map { TaskTypeDefinition(name: $0, maxConcurrent: nil, maxAttempts: 1, handler: $0) }
            + TaskTypeRegistry.builtIn.types.values)
}

@Suite("Workflows", .serialized)
struct WorkflowTests {
    /// A node of a `nodes` body.
    static func node(_ key: String, _ type: String = "step", after: [String] = [], policy: String? = nil) -> String {
        var json = "{\"key\":\"\(key)\",\"type\":\"\(type)\",\"params\":{\"node\":\"\(key)\"}"
        if !after.isEmpty { json += ",\"depends_on\":[" + after.map { "\"\($0)\"" }.joined(separator: ",") + "]" }
        if let policy { json += ",\"on_dependency_failure\":\"\(policy)\"" }
        return json + "}"
    }

    static func body(_ name: String, _ nodes: [String]) -> String {
        "{\"name\":\"\(name)\",\"nodes\":[" + nodes.joined(separator: ",") + "]}"
    }

    /// Submits a workflow; returns its id and each node's task id.
    static func submit(_ stack: Stack, _ body: String, headers: [(String, String)] = []) async throws -> (id: Int64, nodes: [String: Int64]) {
        let reply = try await stack.post("/v1/workflows", body, headers: headers)
        guard reply.status == 201 || reply.status == 200, let json = reply.json, let id = json["id"]?.intValue,
            case .object(let members)? = json["nodes"]
        else { throw StackError("submit workflow got \(reply.status): \(reply.body)") }
        return (id, members.compactMapValues(\.intValue))
    }

    /// Waits until the workflow is no longer running; returns its JSON.
    static func waitUntilEnded(_ stack: Stack, _ id: Int64, timeout: Duration = .seconds(60)) async throws -> JSONValue {
        let deadline = ContinuousClock.now + timeout
        while true {
            let json = try await stack.get("/v1/workflows/\(id)").json
            if let status = json?["status"]?.stringValue, status != "running", let json { return json }
            if ContinuousClock.now > deadline { throw StackError("workflow \(id) still running after \(timeout): \(json?.serialized ?? "")") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    static func nodeStatus(_ workflow: JSONValue, _ key: String) -> String? {
        workflow["nodes"]?.arrayValue?.first { $0["key"]?.stringValue == key }?["status"]?.stringValue
    }

    @Test("a diamond runs each node once, after its dependencies succeeded, and gives it their results")
    func diamond() async throws {
        let journal = WorkflowJournal()
        let stack = try await Stack.start(registry: WorkflowJournal.registry, handlers: journal.handlers())
        let (id, nodes) = try await Self.submit(stack, Self.body("diamond", [
            Self.node("fetch"), Self.node("left", after: ["fetch"]), Self.node("right", after: ["fetch"]),
            Self.node("join", after: ["left", "right"]),
        ]))
        #expect(nodes.count == 4)
        let workflow = try await Self.waitUntilEnded(stack, id)
        #expect(workflow["status"]?.stringValue == "succeeded")
        #expect(workflow["counts"]?["succeeded"]?.intValue == 4)
        #expect(workflow["nodes"]?.arrayValue?.first { $0["key"]?.stringValue == "join" }?["depends_on"]?.arrayValue?.count == 2)
        for key in ["fetch", "left", "right", "join"] { #expect(journal.runs(of: key).count == 1, "\(key) ran once") }
        let join = try #require(journal.runs(of: "join").first)
        #expect(Set(join.dependencies.keys) == ["left", "right"])
        #expect(join.dependencies["left"]?["result"]?["node"]?.stringValue == "left")
        #expect(join.dependencies["right"]?["status"]?.stringValue == "succeeded")
        #expect(join.dependencies["right"]?["task_id"]?.intValue == nodes["right"])
        let fetch = try #require(journal.runs(of: "fetch").first)
        #expect(fetch.dependencies.isEmpty, "a root is given no dependencies")
        for key in ["left", "right"] { #expect(try #require(journal.runs(of: key).first).startedAt >= fetch.startedAt) }
        // The history of the join shows when it was queued by its dependencies.
        let history = try await stack.get("/v1/tasks/\(nodes["join"]!)/events").json
        #expect(history?["events"]?.arrayValue?.contains { $0["agent"]?.stringValue == "workflow" && $0["kind"]?.stringValue == "queued" } == true)
        try await stack.stop()
    }

    @Test("a chain runs its steps in order, each given the one before")
    func chain() async throws {
        let journal = WorkflowJournal()
        let stack = try await Stack.start(registry: WorkflowJournal.registry, handlers: journal.handlers())
        let (id, nodes) = try await Self.submit(stack, """
            {"name":"pipeline","chain":[{"type":"step","params":{"node":"1"}},{"type":"step","params":{"node":"2"}},
            {"key":"last","type":"step","params":{"node":"last"}}]}
            """)
        #expect(Set(nodes.keys) == ["1", "2", "last"])
        #expect(try await Self.waitUntilEnded(stack, id)["status"]?.stringValue == "succeeded")
        #expect(journal.runs.map(\.node) == ["1", "2", "last"])
        #expect(journal.runs(of: "last").first?.dependencies["2"]?["result"]?["node"]?.stringValue == "2")
        try await stack.stop()
    }

    @Test("each failure policy: fail cascades, skip skips, run runs told which dependency failed; the workflow fails")
    func failurePolicies() async throws {
        let journal = WorkflowJournal()
        let stack = try await Stack.start(registry: WorkflowJournal.registry, handlers: journal.handlers())
        let (id, _) = try await Self.submit(stack, Self.body("policies", [
            Self.node("broken", "boom"),
            Self.node("failing", after: ["broken"]), Self.node("below-failing", after: ["failing"]),
            Self.node("skipping", after: ["broken"], policy: "skip"), Self.node("after-skip", after: ["skipping"], policy: "run"),
            Self.node("running", after: ["broken"], policy: "run"),
            Self.node("fine"),
        ]))
        let workflow = try await Self.waitUntilEnded(stack, id)
        #expect(workflow["status"]?.stringValue == "failed")
        #expect(Self.nodeStatus(workflow, "broken") == "dead")
        #expect(Self.nodeStatus(workflow, "failing") == "failed")
        #expect(Self.nodeStatus(workflow, "below-failing") == "failed")
        #expect(Self.nodeStatus(workflow, "skipping") == "skipped")
        #expect(Self.nodeStatus(workflow, "after-skip") == "succeeded")
        #expect(Self.nodeStatus(workflow, "running") == "succeeded")
        #expect(Self.nodeStatus(workflow, "fine") == "succeeded")
        for key in ["failing", "below-failing", "skipping"] { #expect(journal.runs(of: key).isEmpty, "\(key) never ran") }
        let running = try #require(journal.runs(of: "running").first)
        #expect(running.dependencies["broken"]?["status"]?.stringValue == "dead")
        #expect(running.dependencies["broken"]?["error"]?.stringValue == "boom")
        #expect(journal.runs(of: "after-skip").first?.dependencies["skipping"]?["status"]?.stringValue == "skipped")
        try await stack.stop()
    }

    @Test("a cancelled dependency counts as failed for its dependants")
    func cancelledDependency() async throws {
        let journal = WorkflowJournal()
        let stack = try await Stack.start(registry: WorkflowJournal.registry, handlers: journal.handlers())
        let (id, nodes) = try await Self.submit(stack, Self.body("cancel-one", [
            Self.node("long", "slow"), Self.node("next", after: ["long"]), Self.node("anyway", after: ["long"], policy: "run"),
        ]))
        while journal.runs(of: "long").isEmpty { try await Task.sleep(for: .milliseconds(20)) }
        #expect(try await stack.post("/v1/tasks/\(nodes["long"]!)/cancel", "{}").status == 200)
        let workflow = try await Self.waitUntilEnded(stack, id)
        #expect(workflow["status"]?.stringValue == "failed")
        #expect(Self.nodeStatus(workflow, "next") == "failed")
        #expect(journal.runs(of: "anyway").first?.dependencies["long"]?["status"]?.stringValue == "cancelled")
        try await stack.stop()
    }

    @Test("cancelling a workflow mid-flight stops the running node and cancels the rest; none of them runs")
    func cancelMidFlight() async throws {
        let journal = WorkflowJournal()
        let stack = try await Stack.start(registry: WorkflowJournal.registry, handlers: journal.handlers())
        let (id, _) = try await Self.submit(stack, Self.body("cancelled", [
            Self.node("first"), Self.node("long", "slow", after: ["first"]), Self.node("never", after: ["long"]),
        ]))
        let clock = ContinuousClock()
        let start = clock.now
        while journal.runs(of: "long").isEmpty, clock.now - start < .seconds(20) { try await Task.sleep(for: .milliseconds(20)) }
        let reply = try await stack.post("/v1/workflows/\(id)/cancel", "{}")
        #expect(reply.status == 200)
        #expect(reply.json?["cancelled_nodes"]?.intValue == 2)
        let workflow = try await stack.get("/v1/workflows/\(id)").json
        #expect(workflow?["status"]?.stringValue == "cancelled")
        #expect(workflow.map { Self.nodeStatus($0, "first") } == "succeeded")
        #expect(workflow.map { Self.nodeStatus($0, "long") } == "cancelled")
        #expect(workflow.map { Self.nodeStatus($0, "never") } == "cancelled")
        try await Task.sleep(for: .milliseconds(500))
        #expect(journal.runs(of: "never").isEmpty)
        let again = try await stack.post("/v1/workflows/\(id)/cancel", "{}")
        #expect(again.status == 409)
        #expect(again.json?["error"]?["code"]?.stringValue == "already_finished")
        try await stack.stop()
    }

    @Test("retry re-runs only the failed part; succeeded nodes keep their results and do not run again")
    func retryFailedPart() async throws {
        let journal = WorkflowJournal()
        journal.failFirst(1, of: "shaky")
        let stack = try await Stack.start(registry: WorkflowJournal.registry, handlers: journal.handlers())
        let (id, _) = try await Self.submit(stack, Self.body("retry", [
            Self.node("done"), Self.node("shaky", "flaky", after: ["done"]), Self.node("after", after: ["shaky", "done"]),
            Self.node("skipped", after: ["shaky"], policy: "skip"),
        ]))
        var workflow = try await Self.waitUntilEnded(stack, id)
        #expect(workflow["status"]?.stringValue == "failed")
        #expect(Self.nodeStatus(workflow, "after") == "failed")
        #expect(Self.nodeStatus(workflow, "skipped") == "skipped")
        #expect(try await stack.post("/v1/workflows/\(id)/retry", "{}").status == 200)
        workflow = try await Self.waitUntilEnded(stack, id)
        #expect(workflow["status"]?.stringValue == "succeeded")
        #expect(journal.runs(of: "done").count == 1, "a succeeded node is not run again")
        #expect(journal.runs(of: "shaky").count == 2)
        #expect(journal.runs(of: "after").count == 1)
        #expect(journal.runs(of: "after").first?.dependencies["done"]?["result"]?["node"]?.stringValue == "done")
        let succeeded = try await stack.post("/v1/workflows/\(id)/retry", "{}")
        #expect(succeeded.status == 409)
        #expect(succeeded.json?["error"]?["code"]?.stringValue == "nothing_to_retry")
        let cancelEnded = try await stack.post("/v1/workflows/\(id)/cancel", "{}")
        #expect(cancelEnded.status == 409 && cancelEnded.json?["error"]?["code"]?.stringValue == "already_finished")
        try await stack.stop()
    }

    @Test("a redriven dead node carries its workflow on")
    func redriveContinuesWorkflow() async throws {
        let journal = WorkflowJournal()
        journal.failFirst(1, of: "shaky")
        let stack = try await Stack.start(registry: WorkflowJournal.registry, handlers: journal.handlers())
        let (id, nodes) = try await Self.submit(stack, Self.body("redrive", [
            Self.node("shaky", "flaky"), Self.node("next", after: ["shaky"]), Self.node("last", after: ["next"]),
        ]))
        #expect(try await Self.waitUntilEnded(stack, id)["status"]?.stringValue == "failed")
        #expect(try await stack.post("/v1/dead/\(nodes["shaky"]!)/retry", "{}").status == 200)
        let workflow = try await Self.waitUntilEnded(stack, id)
        #expect(workflow["status"]?.stringValue == "succeeded")
        #expect(journal.runs(of: "last").count == 1)
        try await stack.stop()
    }

    @Test("a redrive while a dependant still waits on another dependency: it starts once both succeeded, not before")
    func redriveWithWaitingDependant() async throws {
        let journal = WorkflowJournal()
        journal.failFirst(1, of: "shaky")
        let stack = try await Stack.start(registry: WorkflowJournal.registry, handlers: journal.handlers())
        let (id, nodes) = try await Self.submit(stack, Self.body("redrive-waiting", [
            Self.node("shaky", "flaky"), Self.node("long", "pause"), Self.node("both", after: ["shaky", "long"], policy: "run"),
        ]))
        _ = try await stack.waitUntilTerminal([nodes["shaky"]!])
        // "long" is still running: redrive the dead one now.
        #expect(try await stack.post("/v1/dead/\(nodes["shaky"]!)/retry", "{}").status == 200)
        let workflow = try await Self.waitUntilEnded(stack, id)
        #expect(workflow["status"]?.stringValue == "succeeded")
        let both = try #require(journal.runs(of: "both").first)
        #expect(journal.runs(of: "both").count == 1)
        #expect(both.dependencies["shaky"]?["status"]?.stringValue == "succeeded", "started after the redriven dependency succeeded")
        #expect(both.dependencies["long"]?["status"]?.stringValue == "succeeded", "started after the other dependency succeeded")
        try await stack.stop()
    }

    @Test("a workflow cancelled while a node was queued runs that node afresh when retried")
    func retryAfterCancel() async throws {
        let journal = WorkflowJournal()
        let stack = try await Stack.start(registry: WorkflowJournal.registry, agents: 0)
        let (id, _) = try await Self.submit(stack, Self.body("cancel-retry", [Self.node("first"), Self.node("second", after: ["first"])]))
        // No agent yet: "first" is queued in Redis when the workflow is cancelled.
        #expect(try await stack.post("/v1/workflows/\(id)/cancel", "{}").status == 200)
        #expect(try await stack.post("/v1/workflows/\(id)/retry", "{}").status == 200)
        let agent = try stack.startAgent(id: "late", registry: WorkflowJournal.registry, handlers: journal.handlers())
        let workflow = try await Self.waitUntilEnded(stack, id)
        #expect(workflow["status"]?.stringValue == "succeeded")
        #expect(journal.runs(of: "second").count == 1)
        try await agent.stop()
        try await stack.stop()
    }

    @Test("a node left waiting after its dependencies ended (a count gone wrong) is decided by the WorkflowSweeper")
    func sweeperDecidesStuckNode() async throws {
        let journal = WorkflowJournal()
        let stack = try await Stack.start(registry: WorkflowJournal.registry, handlers: journal.handlers())
        let (id, nodes) = try await Self.submit(stack, Self.body("stuck", [Self.node("first"), Self.node("second", after: ["first"])]))
        #expect(try await Self.waitUntilEnded(stack, id)["status"]?.stringValue == "succeeded")
        // As if a decrement had been lost: the node waits on a dependency that has ended, for an hour.
        try await stack.coordinator.postgres.withSession { session in
            _ = try session.query(
                "UPDATE tasks SET status = 'waiting', waiting_on = 1, finished_at = NULL, updated_at = now() - interval '1 hour' WHERE id = $1",
                [String(nodes["second"]!)])
            _ = try session.query("UPDATE workflows SET status = 'running', finished_at = NULL WHERE id = $1", [String(id)])
        }
        try await stack.coordinator.workflowSweeper.sweep()
        let workflow = try await Self.waitUntilEnded(stack, id)
        #expect(workflow["status"]?.stringValue == "succeeded")
        #expect(journal.runs(of: "second").count == 2, "it ran again once decided")
        try await stack.stop()
    }

    @Test("bad workflows are refused before anything is stored, naming the node; an Idempotency-Key returns the same workflow")
    func validationAndIdempotency() async throws {
        let stack = try await Stack.start(registry: WorkflowJournal.registry, agents: 0)
        let cycle = try await stack.post("/v1/workflows", Self.body("cycle", [Self.node("a", after: ["b"]), Self.node("b", after: ["a"])]))
        #expect(cycle.status == 400)
        #expect(cycle.json?["error"]?["code"]?.stringValue == "invalid_workflow")
        #expect(cycle.json?["error"]?["message"]?.stringValue?.contains("cycle") == true)
        let unknown = try await stack.post("/v1/workflows", Self.body("unknown", [Self.node("a"), Self.node("b", "nope", after: ["a"])]))
        #expect(unknown.status == 400 || unknown.status == 422)
        #expect(unknown.json?["error"]?["message"]?.stringValue?.contains("'b'") == true)
        let missing = try await stack.post("/v1/workflows", Self.body("missing", [Self.node("a", after: ["ghost"])]))
        #expect(missing.status == 400)
        let count = try await stack.coordinator.postgres.withSession { session in
            try session.query("SELECT count(*) FROM workflows").rows.first?[0]
        }
        #expect(count == "0", "nothing stored")

        let body = Self.body("once", [Self.node("a"), Self.node("b", after: ["a"])])
        let first = try await Self.submit(stack, body, headers: [("Idempotency-Key", "wf-1")])
        let replay = try await stack.post("/v1/workflows", body, headers: [("Idempotency-Key", "wf-1")])
        #expect(replay.status == 200)
        #expect(replay.headers["Idempotent-Replayed"].first == "true")
        #expect(replay.json?["id"]?.intValue == first.id)
        #expect(replay.json?["nodes"]?["b"]?.intValue == first.nodes["b"])
        let list = try await stack.get("/v1/workflows?name=once&status=running").json
        #expect(list?["workflows"]?.arrayValue?.map { $0["id"]?.intValue } == [first.id])
        #expect(try await stack.get("/v1/workflows?status=bogus").status == 400)
        #expect(try await stack.get("/v1/workflows/99999999").status == 404)
        try await stack.stop()
    }

    @Test("a 10,000-node fan-out/fan-in runs its join exactly once, given every result")
    func fanOutFanIn() async throws {
        let journal = WorkflowJournal()
        // Servers of its own: 10,000 nodes at full speed would hold up the other suites' shared ones.
        let environment = try await TestServers.shared.environment(name: "fan", ownRedis: true, ownPostgres: true)
        let stack = try await Stack.start(registry: WorkflowJournal.registry, handlers: journal.handlers(), environment: environment)
        var nodes = [Self.node("root")]
        nodes.reserveCapacity(10_000)
        for index in 0..<9_998 { nodes.append("{\"key\":\"p\(index)\",\"type\":\"step\",\"params\":{\"node\":\"p\"},\"depends_on\":[\"root\"]}") }
        nodes.append(Self.node("join", after: (0..<9_998).map { "p\($0)" }))
        let submitted = ContinuousClock.now
        let (id, ids) = try await Self.submit(stack, Self.body("fan", nodes))
        #expect(ids.count == 10_000)
        let workflow = try await Self.waitUntilEnded(stack, id, timeout: .seconds(240))
        let total = ContinuousClock.now - submitted
        #expect(workflow["status"]?.stringValue == "succeeded")
        let joins = journal.runs(of: "join")
        #expect(joins.count == 1, "the join ran exactly once")
        #expect(joins.first?.dependencies.count == 9_998, "the join was given every result")
        let lastParallel = try #require(journal.runs(of: "p").map(\.startedAt).max())
        let joinStart = try #require(joins.first?.startedAt)
        // Task.sleep-free figures for the closing note: the whole run, and from the last parallel node's
        // start (its end is within a millisecond: the handler returns at once) to the join's start.
        print("fan-out/fan-in 10,000 nodes: \(total) in all; last parallel node start to join start \(joinStart - lastParallel)")
        try await stack.stop()
        await environment.postgresServer.stop()
        await environment.redisServer.stop()
    }
}
