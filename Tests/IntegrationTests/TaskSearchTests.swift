import ConveyorCoordinator
import ConveyorCore
import ConveyorPostgres
import ConveyorRedis
import ConveyorTesting
import Foundation
import Testing

@Suite("Task search and bulk actions")
struct TaskSearchTests {
    /// Ids of a search reply, in order.
    private func ids(_ reply: Stack.Reply) -> [Int64] {
        reply.json?["tasks"]?.arrayValue?.compactMap { $0["id"]?.intValue } ?? []
    }

    private func submitBatch(_ stack: Stack, _ tasks: [String], headers: [(String, String)] = []) async throws -> [Int64] {
        let reply = try await stack.post("/v1/tasks/batch", "{\"tasks\":[\(tasks.joined(separator: ","))]}", headers: headers)
        guard reply.status == 201 else { throw StackError("batch got \(reply.status): \(reply.body)") }
        return reply.json?["tasks"]?.arrayValue?.compactMap { $0["id"]?.intValue } ?? []
    }

    @Test("a search finds tasks by status, type, queue, tag, correlation id and idempotency key, newest first")
    func filters() async throws {
        let stack = try await Stack.start(agents: 0)
        let tagged = try await submitBatch(stack, (0..<3).map { _ in #"{"type":"noop","tags":{"customer":"acme"}}"# }, headers: [("X-Correlation-ID", "search-test-1")])
        let echo = try await stack.submit("echo")
        let keyed = try await stack.post("/v1/tasks", #"{"type":"noop"}"#, headers: [("Idempotency-Key", "search-key-1")]).json?["id"]?.intValue
        let cancelled = try await stack.submit("sleep")
        #expect(try await stack.post("/v1/tasks/\(cancelled)/cancel", "").status == 200)

        #expect(ids(try await stack.get("/v1/tasks")) == ([cancelled, keyed ?? 0, echo] + tagged.reversed()))
        #expect(ids(try await stack.get("/v1/tasks?tag=customer:acme")) == tagged.reversed())
        #expect(ids(try await stack.get("/v1/tasks?correlation_id=search-test-1")) == tagged.reversed())
        #expect(ids(try await stack.get("/v1/tasks?idempotency_key=search-key-1")) == [keyed ?? 0])
        #expect(ids(try await stack.get("/v1/tasks?type=echo")) == [echo])
        #expect(ids(try await stack.get("/v1/tasks?queue=default&type=sleep")) == [cancelled])
        #expect(ids(try await stack.get("/v1/tasks?status=cancelled")) == [cancelled])
        #expect(ids(try await stack.get("/v1/tasks?status=queued,cancelled&type=sleep")) == [cancelled])
        #expect(ids(try await stack.get("/v1/tasks?status=queued&tag=customer:acme&tag=customer:other")) == [])
        #expect(ids(try await stack.get("/v1/tasks?error=CANCEL")) == [cancelled])
        let page = try await stack.get("/v1/tasks?type=echo")
        let task = try #require(page.json?["tasks"]?.arrayValue?.first)
        #expect(task["status"]?.stringValue == "queued" && task["queue"]?.stringValue == "default" && task["tags"] == .object([:]))
        #expect(page.json?["next_cursor"] == .null)
        try await stack.stop()
    }

    @Test("pages follow the cursor newest first without repeating or skipping a task")
    func keysetPages() async throws {
        let stack = try await Stack.start(agents: 0)
        let all = try await submitBatch(stack, (0..<25).map { _ in #"{"type":"noop","tags":{"run":"pages"}}"# })
        for path in ["/v1/tasks?limit=10", "/v1/tasks?tag=run:pages&limit=10", "/v1/tasks?type=noop&limit=10"] {
            var seen: [Int64] = []
            var cursor: String?
            var pages = 0
            repeat {
                let reply = try await stack.get(path + (cursor.map { "&cursor=\($0)" } ?? ""))
                #expect(reply.status == 200, "\(reply.body)")
                seen += ids(reply)
                cursor = reply.json?["next_cursor"]?.stringValue
                pages += 1
            } while cursor != nil && pages < 10
            #expect(seen == all.reversed(), "\(path)")
            #expect(pages == 3, "\(path)")
        }
        try await stack.stop()
    }

    @Test("a filter only the rows can check examines a bounded stretch per page, and the cursor goes on to every match")
    func boundedPages() async throws {
        let stack = try await Stack.start(agents: 0)
        let old = try await submitBatch(stack, (0..<3).map { _ in #"{"type":"sleep"}"# })
        for id in old { #expect(try await stack.postRetryingUnavailable("/v1/tasks/\(id)/cancel", "").status == 200) }
        for _ in 0..<3 {
            _ = try await submitBatch(stack, (0..<1000).map { _ in #"{"type":"noop"}"# })
        }
        // Error text is no index's: the first page walks 2,000 newer tasks, finds none, and says where to go on.
        let first = try await stack.get("/v1/tasks?error=cancelled")
        #expect(ids(first).isEmpty)
        let cursor = try #require(first.json?["next_cursor"]?.stringValue)
        let second = try await stack.get("/v1/tasks?error=cancelled&cursor=\(cursor)")
        #expect(ids(second) == old.reversed())
        #expect(second.json?["next_cursor"] == .null)
        // The status index answers at once.
        #expect(ids(try await stack.get("/v1/tasks?status=cancelled&error=cancel")) == old.reversed())
        try await stack.stop()
    }

    @Test("created and finished time ranges narrow the search to the tasks inside them")
    func timeRanges() async throws {
        let stack = try await Stack.start(agents: 1)
        let before = try await submitBatch(stack, (0..<3).map { _ in #"{"type":"noop"}"# })
        _ = try await stack.waitUntilTerminal(before)
        try await Task.sleep(for: .milliseconds(20))
        let middle = WallClock.nowMillis()
        try await Task.sleep(for: .milliseconds(20))
        let after = try await submitBatch(stack, (0..<2).map { _ in #"{"type":"noop"}"# })
        _ = try await stack.waitUntilTerminal(after)
        let at = UTCTime.format(millis: middle)
        #expect(ids(try await stack.get("/v1/tasks?created_after=\(at)")) == after.reversed())
        #expect(ids(try await stack.get("/v1/tasks?created_before=\(at)")) == before.reversed())
        #expect(ids(try await stack.get("/v1/tasks?finished_before=\(at)")) == before.reversed())
        #expect(ids(try await stack.get("/v1/tasks?finished_after=\(at)&status=succeeded")) == after.reversed())
        #expect(ids(try await stack.get("/v1/tasks?created_after=\(UTCTime.format(millis: middle + 3_600_000))")) == [])
        try await stack.stop()
    }

    @Test("an unknown filter, a bad status, time, tag, limit or cursor is a 400 naming it")
    func refusals() async throws {
        let stack = try await Stack.start(agents: 0)
        for (query, words) in [
            ("stauts=failed", "unknown filter 'stauts'"), ("status=broken", "unknown status 'broken'"),
            ("created_after=yesterday", "created_after"), ("tag=nocolon", "tag: must be key:value"),
            ("limit=0", "limit"), ("limit=501", "limit"), ("cursor=abc", "cursor"), ("type=a&type=b", "more than once"),
        ] {
            let reply = try await stack.get("/v1/tasks?\(query)")
            #expect(reply.status == 400, "\(query)")
            #expect(reply.json?["error"]?["message"]?.stringValue?.contains(words) == true, "\(query): \(reply.body)")
        }
        try await stack.stop()
    }

    @Test("a submit-only token finds its own tasks only; bulk actions need the admin scope")
    func scopes() async throws {
        let tokens = [
            APIToken(name: "ci", scopes: [.submit], secret: "submit-secret-0001"),
            APIToken(name: "other", scopes: [.submit], secret: "submit-secret-0002"),
            APIToken(name: "dash", scopes: [.read], secret: "read-secret-000001"),
        ]
        let stack = try await Stack.start(agents: 0) { $0.apiTokens += tokens }
        let mine = try #require(try await stack.request(.POST, "/v1/tasks", body: #"{"type":"noop"}"#, token: "submit-secret-0001").json?["id"]?.intValue)
        let theirs = try #require(try await stack.request(.POST, "/v1/tasks", body: #"{"type":"noop"}"#, token: "submit-secret-0002").json?["id"]?.intValue)
        #expect(ids(try await stack.request(.GET, "/v1/tasks", token: "submit-secret-0001")) == [mine])
        #expect(ids(try await stack.request(.GET, "/v1/tasks", token: "read-secret-000001")) == [theirs, mine])
        let refused = try await stack.request(.POST, "/v1/tasks/cancel", body: #"{"type":"noop"}"#, token: "read-secret-000001")
        #expect(refused.status == 403)
        #expect(try await stack.task(mine)["status"]?.stringValue == "queued")
        try await stack.stop()
    }

    @Test("a bulk cancel stops the matching unfinished tasks up to its bound, in PostgreSQL and Redis, and says whether more are left")
    func bulkCancel() async throws {
        let stack = try await Stack.start(agents: 0)
        let targets = try await submitBatch(stack, (0..<30).map { _ in #"{"type":"noop","tags":{"batch":"b1"}}"# })
        let bystander = try await stack.submit("noop")
        let first = try await stack.post("/v1/tasks/cancel", #"{"tag":"batch:b1","limit":20}"#)
        #expect(first.status == 200, "\(first.body)")
        #expect(first.json?["cancelled"]?.intValue == 20 && first.json?["more"] == .bool(true))
        let second = try await stack.post("/v1/tasks/cancel", #"{"tag":["batch:b1"]}"#)
        #expect(second.json?["cancelled"]?.intValue == 10 && second.json?["more"] == .bool(false))
        let statuses = try await stack.waitUntilTerminal(targets)
        #expect(statuses.values.allSatisfy { $0 == .cancelled })
        #expect(try await stack.task(bystander)["status"]?.stringValue == "queued")
        let marked = try await stack.coordinator.redis.send(RedisCommand("SCARD", [stack.environment.keys.cancelled("default")]))
        #expect(marked.integer == 30)
        let history = try await stack.get("/v1/tasks/\(targets[0])/events")
        #expect(history.body.contains("\"cancelled\""))
        try await stack.stop()
    }

    @Test("a bulk retry queues the matching dead tasks again with fresh attempts, and failed workflow nodes by retrying their workflow")
    func bulkRetry() async throws {
        let stack = try await Stack.start(agents: 1)
        let dead = try await stack.submit("fail", params: #"{"times":1}"#, extra: #","max_attempts":1,"tags":{"group":"r"}"#)
        let fine = try await stack.submit("noop", extra: #","tags":{"group":"r"}"#)
        // A chain whose first node dies once: the second node fails without running.
        let workflow = try await stack.post("/v1/workflows", #"{"name":"w","chain":[{"type":"fail","params":{"times":1},"max_attempts":1},{"type":"noop"}]}"#)
        let nodes = try #require(workflow.json?["nodes"])
        let (root, child) = (try #require(nodes["1"]?.intValue), try #require(nodes["2"]?.intValue))
        let ended = try await stack.waitUntilTerminal([dead, fine, root, child])
        #expect(ended == [dead: .dead, fine: .succeeded, root: .dead, child: .failed])
        let refused = try await stack.post("/v1/tasks/retry", #"{"tag":"group:r","status":"succeeded"}"#)
        #expect(refused.status == 400 && refused.json?["error"]?["code"]?.stringValue == "invalid_filter")
        let reply = try await stack.post("/v1/tasks/retry", #"{"tag":"group:r"}"#)
        #expect(reply.status == 200, "\(reply.body)")
        #expect(reply.json?["retried"]?.intValue == 1)
        // The failed node alone: its workflow is retried, so its dead dependency runs first and succeeds.
        let nodeReply = try await stack.post("/v1/tasks/retry", "{\"status\":\"failed\",\"correlation_id\":\(try await stack.task(child)["correlation_id"]!.serialized)}")
        #expect(nodeReply.json?["retried"]?.intValue == 1, "\(nodeReply.body)")
        let again = try await stack.waitUntilTerminal([dead, root, child])
        #expect(again == [dead: .succeeded, root: .succeeded, child: .succeeded])
        #expect(try await stack.task(dead)["attempts"]?.intValue == 2)
        #expect(try await stack.post("/v1/tasks/retry", "{}").json?["error"]?["code"]?.stringValue == "filter_required")
        try await stack.stop()
    }

    @Test("each driver of the search walks its index, never the whole table")
    func plans() async throws {
        let stack = try await Stack.start(agents: 0)
        _ = try await stack.submit("noop")
        let cases: [(TaskFilter, String)] = [
            ({ var f = TaskFilter(); f.statuses = [.failed, .dead]; return f }(), "task_attention"),
            ({ var f = TaskFilter(); f.type = "noop"; return f }(), "pkey"),
            ({ var f = TaskFilter(); f.correlationID = "x"; return f }(), "correlation_id_id_idx"),
            (TaskFilter(), "pkey"),
        ]
        for (filter, index) in cases {
            let plan = TaskSearchPlan(filter: filter, limit: 50)
            let (sql, parameters) = plan.candidatesQuery(below: Int64.max, above: 0)
            let explained = try await stack.coordinator.postgres.withSession { session in
                try session.transaction { () throws(PostgresError) -> String in
                    try session.execute("SET LOCAL enable_seqscan = off")
                    return try session.query("EXPLAIN " + sql, parameters).rows.compactMap { $0[0] }.joined(separator: "\n")
                }
            }
            #expect(explained.contains(index), "\(filter): \(explained)")
            #expect(!explained.contains("Seq Scan"), "\(filter): \(explained)")
        }
        try await stack.stop()
    }
}

@Suite("conveyor tasks list")
struct TasksListCommandTests {
    private static let binary = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/debug/conveyor").path

    @Test("the CLI lists the search as a table or JSON with the same filters, and refuses a bad filter with a message and a non-zero exit")
    func listsTasks() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build the conveyor binary first: swift build")
        let stack = try await Stack.start(agents: 0)
        let tagged = try await stack.submit("echo", extra: #","tags":{"customer":"acme"}"#)
        _ = try await stack.submit("noop")
        let common = ["--url", stack.baseURL, "--token", stack.token]
        let table = try await ToolRun.run([Self.binary, "tasks", "list", "--tag", "customer=acme"] + common)
        #expect(table.status == 0, "\(table.output)")
        let lines = table.output.split(separator: "\n")
        #expect(lines.first?.hasPrefix("ID") == true && lines.first?.contains("STATUS") == true)
        #expect(lines.count == 2 && lines[1].hasPrefix(String(tagged)) && lines[1].contains("queued") && lines[1].contains("echo"), "\(table.output)")
        let json = try await ToolRun.run([Self.binary, "tasks", "list", "--status", "queued", "--limit", "1", "--json"] + common)
        let page = try JSONValue.parse(json.output)
        #expect(page["tasks"]?.arrayValue?.count == 1 && page["next_cursor"]?.stringValue != nil)
        let refused = try await ToolRun.run([Self.binary, "tasks", "list", "--status", "sideways"] + common)
        #expect(refused.status != 0 && refused.output.contains("unknown status 'sideways'"), "\(refused.output)")
        try await stack.stop()
    }
}
