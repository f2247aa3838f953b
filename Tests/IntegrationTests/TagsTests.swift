import ConveyorCore
import ConveyorTesting
import Testing

@Suite("Tags")
struct TagsTests {
    @Test("tags given on submit, single or batch, are stored and returned; a task without tags shows {}")
    func storedAndReturned() async throws {
        let stack = try await Stack.start(agents: 0)
        let id = try await stack.submit("noop", extra: #","tags":{"customer":"acme","source":"web"}"#)
        #expect(try await stack.task(id)["tags"] == .object(["customer": .string("acme"), "source": .string("web")]))
        let batch = try await stack.post("/v1/tasks/batch", #"{"tasks":[{"type":"noop","tags":{"batch":"b7"}},{"type":"noop"}]}"#)
        let ids = try #require(batch.json?["tasks"]?.arrayValue?.compactMap { $0["id"]?.intValue })
        #expect(try await stack.task(ids[0])["tags"]?["batch"]?.stringValue == "b7")
        #expect(try await stack.task(ids[1])["tags"] == .object([:]))
        try await stack.stop()
    }

    @Test("invalid tags are a 400 and nothing is stored")
    func refused() async throws {
        let stack = try await Stack.start(agents: 0)
        let count = { () async throws -> String? in
            try await stack.coordinator.postgres.withSession { try $0.query("SELECT count(*) FROM tasks").rows[0][0] }
        }
        let before = try await count()
        let reply = try await stack.post("/v1/tasks/batch", #"{"tasks":[{"type":"noop"},{"type":"noop","tags":{"bad key":"x"}}]}"#)
        #expect(reply.status == 400 && reply.json?["error"]?["code"]?.stringValue == "invalid_tags")
        #expect(try await count() == before)
        try await stack.stop()
    }

    @Test("a tagged task has one row per tag in task_tags, an untagged one none; a tag filter is a primary-key range")
    func indexed() async throws {
        let stack = try await Stack.start(agents: 0)
        let tagged = try await stack.submit("noop", extra: #","tags":{"customer":"acme","region":"eu"}"#)
        _ = try await stack.submit("noop")
        let rows = try await stack.coordinator.postgres.withSession { session in
            try session.query("SELECT key, value, task_id FROM task_tags ORDER BY key").rows
        }
        #expect(rows == [["customer", "acme", String(tagged)], ["region", "eu", String(tagged)]])
        let plan = try await stack.coordinator.postgres.withSession { session in
            try session.transaction { () throws(PostgresError) -> String in
                try session.execute("SET LOCAL enable_seqscan = off")
                return try session.query(
                    "EXPLAIN SELECT task_id FROM task_tags WHERE key = 'customer' AND value = 'acme' ORDER BY task_id DESC LIMIT 50"
                ).rows.compactMap { $0[0] }.joined(separator: "\n")
            }
        }
        #expect(plan.contains("Index Only Scan Backward"), "plan: \(plan)")
        try await stack.stop()
    }
}

import ConveyorPostgres
