import ConveyorCoordinator
import ConveyorCore
import ConveyorPostgres
import ConveyorRedis
import ConveyorTesting
import Testing

/// Retention against a real PostgreSQL: whole generations go, unfinished work stays. Time is moved by
/// backdating `conveyor_generations` and the rows, not by waiting: the rules compare with PostgreSQL's
/// own clock.
@Suite("Retention")
struct RetentionTests {
    /// A stack whose coordinator's periodic services ran their first pass and then sleep on a still
    /// test clock, so each test runs the passes it needs itself.
    private func quietStack(agents: Int = 1, dispatchGrace: Duration = .zero) async throws -> Stack {
        let clock = MockClock()
        let stack = try await Stack.start(agents: agents, coordinatorClock: clock) { configuration in
            configuration.retention = .seconds(86400)
            configuration.dispatchGrace = dispatchGrace
        }
        await clock.waitForSleepers(6)
        return stack
    }

    private func sql(_ stack: Stack, _ text: String, _ parameters: [String?] = []) async throws -> [[String?]] {
        try await stack.coordinator.postgres.withSession { session in try session.query(text, parameters).rows }
    }

    /// How many of generation `number`'s four tables exist, attached or not.
    private func tables(of number: Int64, in stack: Stack) async throws -> Int {
        let count = try await sql(stack, "SELECT count(*) FROM pg_class WHERE relname ~ $1", ["^(tasks|task_events|task_tags|task_attention)_g\(number)$"])[0][0]
        return Int(count ?? "") ?? -1
    }

    /// Opens the next generation and backdates the old one past a one-day window: due for a drop.
    private func expiredGeneration(in stack: Stack) async throws -> Int64 {
        let generations = GenerationStore(client: stack.coordinator.postgres)
        let old = try #require(try await generations.generations().last)
        #expect(try await generations.open(old.number + 1))
        _ = try await sql(stack, "UPDATE conveyor_generations SET closed_at = now() - interval '36 hours' WHERE number = $1", [String(old.number)])
        _ = try await sql(stack, "UPDATE tasks SET finished_at = now() - interval '36 hours' WHERE finished_at IS NOT NULL")
        return old.number
    }

    @Test("a generation closed for longer than the window is dropped with its events and keys; a task that had not finished is kept with its history, and still finishes")
    func expiredGenerationIsDropped() async throws {
        let stack = try await quietStack()
        let generations = GenerationStore(client: stack.coordinator.postgres)
        var finished: [Int64] = []
        for _ in 0..<3 { finished.append(try await stack.submit("noop")) }
        let keyed = try await stack.post("/v1/tasks", "{\"type\":\"noop\"}", headers: [("Idempotency-Key", "nightly-report")])
        #expect(keyed.status == 201)
        let keyedID = try #require(keyed.json?["id"]?.intValue)
        finished.append(keyedID)
        finished.append(try await stack.submit("noop", extra: #","tags":{"batch":"old"}"#))
        #expect(try await stack.waitUntilTerminal(finished).values.allSatisfy { $0 == .succeeded })
        // One task of the same generation that has not finished: committed, never dispatched (the
        // Reconciler sleeps on the still test clock until the test runs a pass).
        let waiting = try await stack.coordinator.store.insert([NewTask(
            type: "noop", queue: TaskTypeDefinition.defaultQueue, params: "{}", correlationID: "late", idempotencyKey: nil,
            maxAttempts: 3, createdAtMillis: WallClock.nowMillis(), tags: #"{"batch":"kept"}"#)])[0].id.rawValue

        let old = try #require(try await generations.generations().last)
        #expect(try await generations.open(old.number + 1))
        #expect(try await !generations.open(old.number + 1), "opening is idempotent")
        // A day and a half ago, as PostgreSQL counts: past the one-day window plus the block age.
        _ = try await sql(stack, "UPDATE conveyor_generations SET closed_at = now() - interval '36 hours' WHERE number = $1", [String(old.number)])
        _ = try await sql(stack, "UPDATE tasks SET finished_at = now() - interval '36 hours' WHERE finished_at IS NOT NULL")

        let removal = try await stack.coordinator.retention.removeExpired()
        #expect(removal.generationsDropped == 1)
        #expect(removal.tasksKept == 1)
        for id in finished { #expect(try await stack.get("/v1/tasks/\(id)").status == 404) }
        #expect(try await sql(stack, "SELECT count(*) FROM task_events WHERE task_id = ANY($1::bigint[])", [PostgresArrayLiteral.integers(finished)])[0][0] == "0")
        #expect(try await sql(stack, "SELECT task_id FROM task_tags").map { $0[0] } == [String(waiting)], "tags go with their tasks; the kept task keeps its own")
        #expect(try await stack.get("/v1/tasks/\(waiting)").status == 200)
        #expect(try await generations.generations().map(\.number) == [old.number + 1])
        #expect(try await tables(of: old.number, in: stack) == 0, "its tables are dropped, not only detached")

        // The key went with its task: the same key now makes a new task.
        let again = try await stack.post("/v1/tasks", "{\"type\":\"noop\"}", headers: [("Idempotency-Key", "nightly-report")])
        #expect(again.status == 201)
        #expect(again.json?["id"]?.intValue != keyedID)

        // The kept task lives on in the default partition: dispatched now, it runs and is recorded.
        _ = try await stack.coordinator.reconciler.reconcileOnce()
        #expect(try await stack.waitUntilTerminal([waiting])[waiting] == .succeeded)
        #expect(try await sql(stack, "SELECT count(*) FROM tasks_default WHERE id = $1", [String(waiting)])[0][0] == "1")
        try await stack.stop()
    }

    @Test("a generation whose tasks finished within the window, or that is still open, is kept")
    func youngGenerationIsKept() async throws {
        let stack = try await quietStack()
        let generations = GenerationStore(client: stack.coordinator.postgres)
        let id = try await stack.submit("noop")
        #expect(try await stack.waitUntilTerminal([id])[id] == .succeeded)
        let first = try #require(try await generations.generations().last)
        #expect(try await stack.coordinator.retention.removeExpired().generationsDropped == 0, "the open generation is never dropped")
        #expect(try await generations.open(first.number + 1))
        // Closed a while ago, but not longer than the window: kept.
        _ = try await sql(stack, "UPDATE conveyor_generations SET closed_at = now() - interval '12 hours' WHERE number = $1", [String(first.number)])
        #expect(try await stack.coordinator.retention.removeExpired().generationsDropped == 0)
        #expect(try await stack.get("/v1/tasks/\(id)").status == 200)
        try await stack.stop()
    }

    @Test("the next generation opens once the open one is a span old, and new ids start at its first id")
    func generationOpensAfterItsSpan() async throws {
        let stack = try await quietStack(agents: 0)
        let generations = GenerationStore(client: stack.coordinator.postgres)
        let first = try #require(try await generations.generations().last)
        #expect(try await !stack.coordinator.partitionMaintainer.openNextIfDue(), "a fresh generation stays open")
        _ = try await sql(stack, "UPDATE conveyor_generations SET opened_at = now() - interval '25 hours' WHERE number = $1", [String(first.number)])
        #expect(try await stack.coordinator.partitionMaintainer.openNextIfDue())
        // A coordinator that reserves ids now (here a store of its own) gets them from the new generation.
        let store = TaskStore(client: stack.coordinator.postgres)
        let inserted = try await store.insert([NewTask(
            type: "noop", queue: TaskTypeDefinition.defaultQueue, params: "{}", correlationID: "new", idempotencyKey: nil,
            maxAttempts: 3, createdAtMillis: WallClock.nowMillis())])
        #expect(inserted[0].id.rawValue >= (first.number + 1) * Migrations.generationWidth)
        #expect(try await sql(stack, "SELECT count(*) FROM tasks_g\(first.number + 1)")[0][0] == "1")
        try await stack.stop()
    }

    @Test("a dead task about to be removed by retention is not redriven: 409 expiring")
    func expiringDeadTaskIsNotRedriven() async throws {
        let stack = try await quietStack()
        let id = try await stack.submit("fail", params: "{\"times\":99}", extra: ",\"max_attempts\":1")
        #expect(try await stack.waitUntilTerminal([id])[id] == .dead)
        _ = try await sql(stack, "UPDATE tasks SET finished_at = now() - interval '23 hours 50 minutes' WHERE id = $1", [String(id)])
        let reply = try await stack.post("/v1/dead/\(id)/retry", "")
        #expect(reply.status == 409)
        #expect(reply.json?["error"]?["code"]?.stringValue == "expiring", "\(reply.body)")
        #expect(try await stack.post("/v1/dead/retry", "").json?["redriven"]?.intValue == 0)
        try await stack.stop()
    }

    @Test("a task created or redriven in a generation after retention's scan is still kept: the drop keeps undispatched rows under its lock")
    func lateRowsAreKept() async throws {
        // A grace the late task stays within: otherwise a Reconciler pass still running at start-up could
        // dispatch it (it is not in Redis) before the drop, and a dispatched task is not kept.
        let stack = try await quietStack(agents: 0, dispatchGrace: .seconds(3600))
        let generations = GenerationStore(client: stack.coordinator.postgres)
        let old = try #require(try await generations.generations().last)
        // A coordinator that reserved its id before the close commits its task only now.
        let late = try await stack.coordinator.store.insert([NewTask(
            type: "noop", queue: TaskTypeDefinition.defaultQueue, params: "{}", correlationID: "late", idempotencyKey: nil,
            maxAttempts: 3, createdAtMillis: WallClock.nowMillis())])[0].id.rawValue
        #expect(try await generations.open(old.number + 1))
        // As if the scan ran before the insert: an empty list of tasks to keep.
        let kept = try await sql(stack, "SELECT conveyor_detach_generation($1, '{}'::bigint[])", [String(old.number)])
        #expect(kept[0][0] == "1")
        #expect(try await sql(stack, "SELECT count(*) FROM tasks_default WHERE id = $1", [String(late)])[0][0] == "1")
        try await stack.stop()
    }

    @Test("tables a drop detached but did not drop (a crash between the two) go at the next pass, even one with no generation to drop")
    func detachedTablesAreDroppedLater() async throws {
        let stack = try await quietStack()
        let old = try await expiredGeneration(in: stack)
        // The first half of a drop alone, as a crash after its commit would leave it.
        #expect(try await sql(stack, "SELECT conveyor_detach_generation($1, '{}'::bigint[])", [String(old)])[0][0] == "0")
        #expect(try await tables(of: old, in: stack) == 4)
        #expect(try await sql(stack, "SELECT count(*) FROM pg_inherits WHERE inhrelid = to_regclass($1)", ["tasks_g\(old)"])[0][0] == "0", "detached")

        let removal = try await stack.coordinator.retention.removeExpired()
        #expect(removal.generationsDropped == 0)
        #expect(try await tables(of: old, in: stack) == 0)
        #expect(try await tables(of: old + 1, in: stack) == 4, "the open generation's tables stay")
        #expect(try await sql(stack, "SELECT count(*) FROM conveyor_detached_generations")[0][0] == "0")
        try await stack.stop()
    }

    @Test("while a transaction holds tasks, a drop asks for its locks in short attempts: statements on tasks do not queue behind it, and the drop lands once the holder ends")
    func dropWaitsWithoutStallingTraffic() async throws {
        let stack = try await quietStack()
        let old = try await expiredGeneration(in: stack)
        let configuration = stack.coordinator.postgres.configuration
        let holderClient = PostgresClient(configuration: configuration, logger: TestServers.quietLogger)
        let dropperClient = PostgresClient(configuration: configuration, logger: TestServers.quietLogger)
        defer { holderClient.close(); dropperClient.close() }

        // A reader of the old generation that keeps its transaction open until the test lets it end: it
        // waits for an advisory lock the gate holds.
        var gateConfiguration = configuration
        gateConfiguration.poolSize = 1
        let gate = PostgresClient(configuration: gateConfiguration, logger: TestServers.quietLogger)
        defer { gate.close() }
        try await gate.withSession { session in _ = try session.query("SELECT pg_advisory_lock(4141)") }
        let holder = Task {
            try await holderClient.withSession { session in
                // As long as the test needs (the default deadline of 5 s ran out on a loaded CI machine).
                try session.withStatementTimeout(.seconds(300)) { () throws(PostgresError) in
                    try session.transaction { () throws(PostgresError) in
                        _ = try session.query("SELECT count(*) FROM tasks WHERE id = $1", [String(old * Migrations.generationWidth)])
                        _ = try session.query("SELECT pg_advisory_xact_lock(4141)")
                    }
                }
            }
        }
        let here = "datname = current_database()"
        try await waitUntil(stack, "SELECT count(*) FROM pg_stat_activity WHERE \(here) AND query = 'SELECT pg_advisory_xact_lock(4141)' AND wait_event_type = 'Lock'")
        // Attempts of 5 ms, 10 ms apart, for up to two minutes: the holder ends long before.
        let patience = LockPatience(waits: Array(repeating: .milliseconds(5), count: 8000), pause: .milliseconds(10))
        let drop = Task { try await GenerationStore(client: dropperClient, patience: patience).removeExpired(retention: .seconds(86400)) }
        // Its first attempt has started; none can succeed while the holder is there.
        try await waitUntil(stack, "SELECT count(*) FROM pg_stat_activity WHERE \(here) AND query LIKE 'SELECT conveyor\\_detach\\_generation(%'")

        // A single attempt waiting 200 ms, as before, made these wait as long and give up at 100 ms.
        for _ in 0..<20 {
            let probe: Void? = try? await stack.coordinator.postgres.withSession { session in
                try session.transaction(settings: "SET LOCAL lock_timeout = '100ms'") { () throws(PostgresError) in
                    _ = try session.query("SELECT count(*) FROM tasks WHERE id = $1", [String(old * Migrations.generationWidth)])
                }
            }
            #expect(probe != nil, "a statement on tasks was held up behind the drop")
            try await Task.sleep(for: .milliseconds(20))
        }
        try await gate.withSession { session in _ = try session.query("SELECT pg_advisory_unlock(4141)") }
        try await holder.value
        let removal = try await drop.value
        #expect(removal.generationsDropped == 1)
        #expect(removal.lockRetries > 0)
        #expect(try await tables(of: old, in: stack) == 0)
        try await stack.stop()
    }

    /// Polls a count until it is positive (a state another connection reaches soon).
    private func waitUntil(_ stack: Stack, _ countQuery: String) async throws {
        for _ in 0..<500 {
            if try await sql(stack, countQuery)[0][0] != "0" { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("never reached: \(countQuery)")
    }
}
