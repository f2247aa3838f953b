import ConveyorCoordinator
import ConveyorCore
import ConveyorPostgres
import ConveyorRedis
import Testing

@Suite("HTTP API errors against a live coordinator")
struct APIErrorTests {
    /// Asserts the status and the `{"error": {"code", "message"}}` shape.
    private func expectError(_ reply: Stack.Reply, _ status: Int, _ code: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(reply.status == status, "\(reply.body)", sourceLocation: sourceLocation)
        #expect(reply.json?["error"]?["code"]?.stringValue == code, "\(reply.body)", sourceLocation: sourceLocation)
        #expect(reply.json?["error"]?["message"]?.stringValue?.isEmpty == false, sourceLocation: sourceLocation)
    }

    @Test("400, 401, 404, 413 and 422 come back as JSON errors and store nothing")
    func clientErrors() async throws {
        let stack = try await Stack.start { $0.maxBodyBytes = 4096 }
        expectError(try await stack.post("/v1/tasks", "{not json"), 400, "malformed_json")
        expectError(try await stack.post("/v1/tasks", "{\"type\":42}"), 400, "invalid_field")
        expectError(try await stack.post("/v1/tasks", "{\"params\":{}}"), 400, "missing_field")
        expectError(try await stack.post("/v1/tasks", "{\"type\":\"noop\",\"params\":[1]}"), 400, "invalid_field")
        expectError(try await stack.post("/v1/tasks", "{\"type\":\"noop\",\"max_attempts\":0}"), 400, "invalid_field")
        expectError(try await stack.request(.POST, "/v1/tasks", body: "{\"type\":\"noop\"}", token: nil), 401, "unauthorized")
        expectError(try await stack.request(.POST, "/v1/tasks", body: "{\"type\":\"noop\"}", token: "wrong"), 401, "unauthorized")
        expectError(try await stack.request(.GET, "/v1/tasks/1", token: "test-tokenX"), 401, "unauthorized")
        expectError(try await stack.get("/v1/tasks/999999999"), 404, "not_found")
        expectError(try await stack.get("/v1/tasks/abc"), 404, "not_found")
        expectError(try await stack.get("/nowhere"), 404, "not_found")
        let big = "{\"type\":\"noop\",\"params\":{\"blob\":\"" + String(repeating: "x", count: 5000) + "\"}}"
        expectError(try await stack.post("/v1/tasks", big), 413, "payload_too_large")
        expectError(try await stack.post("/v1/tasks", "{\"type\":\"resize_image\"}"), 422, "unknown_task_type")
        expectError(try await stack.post("/v1/tasks", "{\"type\":\"noop\",\"queue\":\"elsewhere\"}"), 422, "unknown_queue")
        let counts = try await stack.coordinator.store.countByStatus()
        #expect(counts.isEmpty, "no error stored a task")
        try await stack.stop()
    }

    @Test("one invalid element rejects the whole batch, naming its index, and nothing is stored")
    func batchIsAllOrNothing() async throws {
        let stack = try await Stack.start()
        let good = "{\"type\":\"noop\"}"
        let reply = try await stack.post("/v1/tasks/batch", "{\"tasks\":[\(good),\(good),{\"type\":\"nope\"},\(good)]}")
        expectError(reply, 422, "unknown_task_type")
        #expect(reply.json?["error"]?["index"]?.intValue == 2)
        #expect(reply.json?["error"]?["message"]?.stringValue?.contains("tasks[2]") == true)
        let typed = try await stack.post("/v1/tasks/batch", "{\"tasks\":[\(good),{\"type\":\"noop\",\"params\":\"x\"}]}")
        expectError(typed, 400, "invalid_field")
        #expect(typed.json?["error"]?["index"]?.intValue == 1)
        expectError(try await stack.post("/v1/tasks/batch", "{\"tasks\":[]}"), 400, "empty_batch")
        let tooMany = "{\"tasks\":[" + Array(repeating: good, count: 1001).joined(separator: ",") + "]}"
        expectError(try await stack.post("/v1/tasks/batch", tooMany), 400, "batch_too_large")
        #expect(try await stack.coordinator.store.countByStatus().isEmpty)
        try await stack.stop()
    }

    @Test("with PostgreSQL unreachable, submissions get 503 with Retry-After and /ready says so")
    func postgresDownGives503() async throws {
        let stack = try await Stack.start(migrate: false) { configuration in
            // Nothing listens on port 1.
            configuration.postgres = try! PostgresConfiguration(url: "postgres://postgres@127.0.0.1:1/none", poolSize: 1)
        }
        let reply = try await stack.post("/v1/tasks", "{\"type\":\"noop\"}")
        expectError(reply, 503, "unavailable")
        #expect(reply.headers.first(name: "Retry-After") == "1")
        let ready = try await stack.request(.GET, "/ready", token: nil)
        #expect(ready.status == 503)
        #expect(ready.json?["redis"]?.stringValue == "ok")
        #expect(ready.json?["postgres"]?.stringValue != "ok")
        try await stack.stop()
    }

    @Test("with Redis unreachable, submissions get 503 with Retry-After and nothing stays stored")
    func redisDownGives503() async throws {
        let stack = try await Stack.start(agents: 0) { configuration in
            configuration.redis = try! RedisConfiguration(url: "redis://127.0.0.1:1/0")
        }
        let reply = try await stack.post("/v1/tasks", "{\"type\":\"noop\"}")
        expectError(reply, 503, "unavailable")
        #expect(reply.headers.first(name: "Retry-After") != nil)
        #expect(try await stack.request(.GET, "/ready", token: nil).status == 503)
        #expect(try await stack.coordinator.store.countByStatus().isEmpty)
        try await stack.stop()
    }
}
