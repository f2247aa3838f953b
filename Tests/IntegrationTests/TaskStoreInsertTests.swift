import ConveyorCore
import ConveyorPostgres
import ConveyorTesting
import Testing

@Suite("Writing new tasks: the one-statement INSERT of a small plain flush and the COPY of a large one")
struct TaskStoreInsertTests {
    @Test(
        "plain tasks written by the INSERT (up to 64) and by the COPY (65) read back the same, column by column",
        arguments: [1, 64, 65])
    func insertAndCopyWriteTheSameRows(count: Int) async throws {
        let environment = try await TestServers.shared.environment(name: "task-store-insert")
        let client = PostgresClient(configuration: environment.postgres, logger: TestServers.quietLogger)
        defer { client.close() }
        try await Migrator.migrate(client)
        let created: Int64 = 1_795_000_000_123
        let priorities: [TaskPriority] = [.normal, .high, .low]
        let tasks = (0..<count).map { index in
            NewTask(
                type: "noop", queue: index % 2 == 0 ? "default" : "bulk", params: #"{"n":\#(index),"s":"tab\there"}"#,
                correlationID: "insert-\(count)-\(index)", idempotencyKey: nil, maxAttempts: 1 + index % 5,
                createdAtMillis: created + Int64(index), submittedBy: index % 3 == 0 ? nil : "ci",
                callbackURL: index % 4 == 0 ? "https://hooks.example/\(index)" : nil,
                priority: priorities[index % 3], limitKey: index % 2 == 0 ? "key-\(index)" : nil)
        }
        let inserted = try await TaskStore(client: client).insert(tasks)
        #expect(inserted.count == count && inserted.allSatisfy { $0.created && $0.status == .queued })
        let ids = inserted.map(\.id.rawValue)
        let rows = try await client.withSession { session in
            try session.query("""
                SELECT id, type, queue, status, params::text, correlation_id, idempotency_key, attempts, max_attempts,
                       (extract(epoch FROM created_at) * 1000)::bigint, (extract(epoch FROM updated_at) * 1000)::bigint,
                       submitted_by, tags::text, run_at, callback_url, priority, limit_key, dispatched
                FROM tasks WHERE id = ANY($1::bigint[]) ORDER BY id
                """, [PostgresArrayLiteral.integers(ids)]).rows
        }
        try #require(rows.count == count)
        for (index, row) in rows.enumerated() {
            let task = tasks[index]
            let priority: String? = task.priority == .normal ? nil : String(task.priority.rawValue)
            let expected: [String?] = [
                String(ids[index]), "noop", task.queue, "queued", #"{"n": \#(index), "s": "tab\there"}"#, task.correlationID, nil, "0",
                String(task.maxAttempts), String(task.createdAtMillis), String(task.createdAtMillis), task.submittedBy, nil, nil,
                task.callbackURL, priority, task.limitKey, "f",
            ]
            #expect(row == expected, "row \(index) of \(count)")
        }
    }
}
