import ConveyorAgent
import ConveyorCore
import ConveyorRedis
import ConveyorTesting
import Testing

@Suite("End to end: HTTP → Redis Streams → agents → PostgreSQL")
struct EndToEndTests {
    @Test("10,000 tasks of 4 queues submitted singly and in batches to 2 agents all succeed, each executed exactly once", arguments: RedisTopology.allCases)
    func tenThousandTasksSucceedExactlyOnce(redis: RedisTopology) async throws {
        let log = ExecutionLog()
        var handlers = HandlerSet.builtIns
        handlers.register("counted", log.handler())
        // Four queues: on the cluster their slots are on different primaries (checked below).
        let queues = ["default", "emails", "images", "billing"]
        let registry = TaskTypeRegistry(queues.map { TaskTypeDefinition(name: "counted-\($0)", queue: $0, maxConcurrent: 64, handler: "counted") })
        let stack = try await Stack.start(registry: registry, agents: 2, handlers: handlers, redis: redis)
        if redis == .cluster {
            let probe = RedisClusterClient(configuration: stack.environment.redis, logger: TestServers.quietLogger)
            defer { probe.close() }
            let topology = try await probe.topology()
            #expect(Set(queues.compactMap { topology.owner(of: HashSlot.of($0)) }).count == 3, "the queues live on every primary")
        }

        // 5,000 single POSTs, 32 at a time.
        let singles = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for worker in 0..<32 {
                group.addTask {
                    var ids: [Int64] = []
                    var index = worker
                    while index < 5000 {
                        ids.append(try await stack.submit("counted-\(queues[index % 4])", params: "{\"n\":\(index)}"))
                        index += 32
                    }
                    return ids
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        // 5,000 more in 50 batches of 100, 8 at a time.
        let batchBody = "{\"tasks\":[" + (0..<100).map { "{\"type\":\"counted-\(queues[$0 % 4])\",\"params\":{}}" }.joined(separator: ",") + "]}"
        let batched = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for worker in 0..<8 {
                group.addTask {
                    var ids: [Int64] = []
                    var batch = worker
                    while batch < 50 {
                        let reply = try await stack.post("/v1/tasks/batch", batchBody)
                        #expect(reply.status == 201)
                        guard case .array(let tasks)? = reply.json?["tasks"] else { throw StackError("batch reply: \(reply.body)") }
                        #expect(tasks.count == 100)
                        ids += tasks.compactMap { $0["id"]?.intValue }
                        batch += 8
                    }
                    return ids
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        let ids = singles + batched
        #expect(ids.count == 10_000)
        #expect(Set(ids).count == 10_000, "every accepted task has its own id")

        let statuses = try await stack.waitUntilTerminal(ids, timeout: .seconds(180))
        #expect(statuses.values.filter { $0 == .succeeded }.count == 10_000)
        let executions = log.executions
        #expect(executions.count == 10_000)
        #expect(executions.values.allSatisfy { $0 == 1 }, "no task ran twice")
        #expect(stack.agents.allSatisfy { $0.executionCount > 0 }, "both agents took work")
        try await stack.stop()
    }

    @Test("GET /v1/tasks/{id} returns the stored task with its lifecycle fields and correlation id", arguments: RedisTopology.allCases)
    func getReturnsLifecycle(redis: RedisTopology) async throws {
        let stack = try await Stack.start(redis: redis)
        let reply = try await stack.post("/v1/tasks", "{\"type\":\"echo\",\"params\":{\"hello\":\"world\"}}", headers: [("X-Correlation-ID", "corr-123")])
        #expect(reply.status == 201)
        #expect(reply.headers.first(name: "X-Correlation-ID") == "corr-123")
        #expect(reply.json?["status"]?.stringValue == "queued")
        let id = try #require(reply.json?["id"]?.intValue)
        _ = try await stack.waitUntilTerminal([id])
        let task = try await stack.task(id)
        #expect(task["id"]?.intValue == id)
        #expect(task["type"]?.stringValue == "echo")
        #expect(task["queue"]?.stringValue == "default")
        #expect(task["status"]?.stringValue == "succeeded")
        #expect(task["attempts"]?.intValue == 1)
        #expect(task["max_attempts"]?.intValue == 3)
        #expect(task["params"] == .object(["hello": .string("world")]))
        #expect(task["result"] == .object(["hello": .string("world")]))
        #expect(task["error"] == .null)
        #expect(task["correlation_id"]?.stringValue == "corr-123")
        for field in ["created_at", "updated_at", "started_at", "finished_at"] {
            #expect(task[field]?.stringValue?.hasSuffix("Z") == true, "\(field) is an RFC 3339 time")
        }
        try await stack.stop()
    }

    @Test("a correlation id is made when the client sends none, and echoed", arguments: RedisTopology.allCases)
    func correlationIDIsMade(redis: RedisTopology) async throws {
        let stack = try await Stack.start(redis: redis)
        let reply = try await stack.post("/v1/tasks", "{\"type\":\"noop\"}")
        let made = try #require(reply.headers.first(name: "X-Correlation-ID"))
        #expect(made.count == 32)
        let task = try await stack.task(try #require(reply.json?["id"]?.intValue))
        #expect(task["correlation_id"]?.stringValue == made)
        try await stack.stop()
    }

    @Test("a failing task is retried (through the delayed set) until it succeeds; one failing every attempt ends dead with its error", arguments: RedisTopology.allCases)
    func retriesThenSucceedsOrFails(redis: RedisTopology) async throws {
        let registry = TaskTypeRegistry([
            TaskTypeDefinition(name: "fail", handler: "fail", backoffBase: .milliseconds(50), backoffMax: .milliseconds(200)),
        ])
        let stack = try await Stack.start(registry: registry, redis: redis)
        let once = try await stack.submit("fail", params: "{\"times\":1}")
        let always = try await stack.submit("fail", params: "{\"times\":10}")
        let statuses = try await stack.waitUntilTerminal([once, always])
        #expect(statuses[once] == .succeeded)
        #expect(statuses[always] == .dead)
        #expect(try await stack.task(once)["attempts"]?.intValue == 2)
        let failed = try await stack.task(always)
        #expect(failed["attempts"]?.intValue == 3)
        #expect(failed["error"]?.stringValue?.contains("on purpose") == true)
        try await stack.stop()
    }

    @Test("/health, /ready and /status answer, and /status lists the live agents", arguments: RedisTopology.allCases)
    func healthReadyStatus(redis: RedisTopology) async throws {
        let stack = try await Stack.start(agents: 2, redis: redis)
        #expect(try await stack.request(.GET, "/health", token: nil).status == 200)
        // Polled as an orchestrator polls it: a 503 while the machine stalls (seen in CI: every test's
        // Redis and PostgreSQL slow to answer for a second or two at the suite's busiest point) is a
        // true answer at that moment, and the next probe is 200.
        var ready = try await stack.request(.GET, "/ready", token: nil)
        let patience = ContinuousClock.now + .seconds(20)
        while ready.status == 503, ContinuousClock.now < patience {
            try await Task.sleep(for: .milliseconds(500))
            ready = try await stack.request(.GET, "/ready", token: nil)
        }
        #expect(ready.status == 200, "\(ready.status): \(ready.body)")
        #expect(ready.json?["redis"]?.stringValue == "ok")
        #expect(ready.json?["postgres"]?.stringValue == "ok")
        var live: Int64 = 0
        for _ in 0..<50 {
            live = try await stack.request(.GET, "/status", token: nil).json?["live_agents"]?.intValue ?? 0
            if live == 2 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(live == 2)
        let status = try await stack.request(.GET, "/status", token: nil).json
        #expect(status?["queues"]?["default"]?["ready"]?.intValue == 0)
        try await stack.stop()
    }
}
