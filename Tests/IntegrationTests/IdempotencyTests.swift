import ConveyorCore
import Testing

@Suite("Idempotency keys")
struct IdempotencyTests {
    @Test("the same Idempotency-Key returns the same task, never a second one")
    func sameKeySameTask() async throws {
        let stack = try await Stack.start()
        let first = try await stack.post("/v1/tasks", "{\"type\":\"noop\"}", headers: [("Idempotency-Key", "order-42")])
        #expect(first.status == 201)
        let second = try await stack.post("/v1/tasks", "{\"type\":\"noop\"}", headers: [("Idempotency-Key", "order-42")])
        #expect(second.status == 200)
        #expect(second.headers.first(name: "Idempotent-Replayed") == "true")
        #expect(first.json?["id"] == second.json?["id"])
        let other = try await stack.post("/v1/tasks", "{\"type\":\"noop\"}", headers: [("Idempotency-Key", "order-43")])
        #expect(other.status == 201)
        #expect(other.json?["id"] != first.json?["id"])
        #expect(try await stack.coordinator.store.countByStatus().values.reduce(0, +) == 2)
        try await stack.stop()
    }

    @Test("concurrent requests with one key create exactly one task")
    func concurrentSameKey() async throws {
        let stack = try await Stack.start()
        let ids = try await withThrowingTaskGroup(of: Int64?.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    let reply = try await stack.post("/v1/tasks", "{\"type\":\"noop\"}", headers: [("Idempotency-Key", "same")])
                    #expect(reply.status == 201 || reply.status == 200)
                    return reply.json?["id"]?.intValue
                }
            }
            return try await group.reduce(into: Set<Int64?>()) { $0.insert($1) }
        }
        #expect(ids.count == 1)
        #expect(try await stack.coordinator.store.countByStatus().values.reduce(0, +) == 1)
        try await stack.stop()
    }

    @Test("retrying a batch with the same Idempotency-Key returns the same tasks; element keys dedupe within a batch")
    func batchKeys() async throws {
        let stack = try await Stack.start()
        let body = "{\"tasks\":[{\"type\":\"noop\"},{\"type\":\"echo\",\"params\":{\"a\":1}}]}"
        let first = try await stack.post("/v1/tasks/batch", body, headers: [("Idempotency-Key", "batch-7")])
        let again = try await stack.post("/v1/tasks/batch", body, headers: [("Idempotency-Key", "batch-7")])
        #expect(first.status == 201)
        #expect(again.status == 200)
        #expect(again.headers.first(name: "Idempotent-Replayed") == "true")
        #expect(first.json?["tasks"]?.ids == again.json?["tasks"]?.ids)
        #expect(first.json?["tasks"]?.ids.count == 2)
        let dedupe = try await stack.post("/v1/tasks/batch", "{\"tasks\":[{\"type\":\"noop\",\"idempotency_key\":\"k\"},{\"type\":\"noop\",\"idempotency_key\":\"k\"}]}")
        let ids = dedupe.json?["tasks"]?.ids ?? []
        #expect(ids.count == 2 && ids[0] == ids[1])
        #expect(try await stack.coordinator.store.countByStatus().values.reduce(0, +) == 3)
        try await stack.stop()
    }
}

extension JSONValue {
    /// The `id`s of an array of `{"id": …}` objects.
    var ids: [Int64] {
        guard case .array(let elements) = self else { return [] }
        return elements.compactMap { $0["id"]?.intValue }
    }
}
