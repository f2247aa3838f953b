import ConveyorAgent
import ConveyorCoordinator
import ConveyorCore
import ConveyorPostgres
import ConveyorRedis
import ConveyorTesting
import Testing

@Suite("Delayed and scheduled tasks")
struct ScheduledTaskTests {
    private let registry = TaskTypeRegistry([
        TaskTypeDefinition(name: "work", maxConcurrent: 200, handler: "work"),
        TaskTypeDefinition(name: "noop", maxConcurrent: 500, handler: "noop"),
    ])

    private func handlers(_ log: ExecutionLog) -> HandlerSet {
        var handlers = HandlerSet.builtIns
        handlers.register("work", log.handler())
        return handlers
    }

    /// started_at − run_at of tasks, in ms, from PostgreSQL.
    private func startErrors(_ ids: [Int64], on stack: Stack) async throws -> [Int64] {
        try await stack.coordinator.postgres.withSession { session in
            try session.query("""
                SELECT (extract(epoch FROM started_at - run_at) * 1000)::bigint FROM tasks WHERE id = ANY($1::bigint[])
                """, [PostgresArrayLiteral.integers(ids)]).rows.compactMap { $0[0].flatMap { Int64($0) } }
        }
    }

    /// The Forwarder's release (its `queued` event, stamped with Redis' clock) minus run_at, in ms.
    private func releaseErrors(_ ids: [Int64], on stack: Stack) async throws -> [Int64] {
        try await stack.coordinator.postgres.withSession { session in
            try session.query("""
                SELECT (extract(epoch FROM e.at - t.run_at) * 1000)::bigint FROM task_events e JOIN tasks t ON t.id = e.task_id
                WHERE e.task_id = ANY($1::bigint[]) AND e.status = 'queued' AND e.agent = 'forwarder'
                """, [PostgresArrayLiteral.integers(ids)]).rows.compactMap { $0[0].flatMap { Int64($0) } }
        }
    }

    @Test("a delayed task is `scheduled` until due, then released within two seconds of its time (one on an idle machine) and never started before it")
    func delayedTaskStartsOnTime() async throws {
        let log = ExecutionLog()
        let stack = try await Stack.start(registry: registry, handlers: handlers(log))
        // Four seconds: at the start of a full run on two cores, the submit and the read below took over 1.5 s.
        let reply = try await stack.post("/v1/tasks", #"{"type":"work","delay":"4s"}"#)
        #expect(reply.status == 201)
        #expect(reply.json?["status"]?.stringValue == "scheduled" && reply.json?["run_at"]?.stringValue != nil)
        let id = try #require(reply.json?["id"]?.intValue)
        let waiting = try await stack.task(id)
        #expect(waiting["status"]?.stringValue == "scheduled")
        #expect(waiting["run_at"]?.stringValue == reply.json?["run_at"]?.stringValue)
        #expect(log.executions[id] == nil)
        #expect(try await stack.waitUntilTerminal([id])[id] == .succeeded)
        let start = try #require(try await startErrors([id], on: stack).first)
        #expect(start >= 0, "started \(start) ms after its run_at")
        let release = try #require(try await releaseErrors([id], on: stack).first)
        // The Forwarder's promise is a second; the whole suite beside it (Chromium included since issue 15)
        // once delayed its wake-up to 1.4 s on two cores.
        #expect(release >= 0 && release < 2000, "released \(release) ms after its run_at")
        let kinds = (try await stack.get("/v1/tasks/\(id)/events").json?["events"]?.arrayValue ?? []).compactMap { $0["kind"]?.stringValue }
        #expect(Array(kinds.prefix(2)) == ["scheduled", "queued"], "\(kinds)")
        #expect(kinds.last == "succeeded")
        try await stack.stop()
    }

    @Test("when due, a scheduled task moves on to `queued` while no agent has taken it; parked, it counts as dispatched")
    func releaseMovesToQueued() async throws {
        let stack = try await Stack.start(registry: registry, agents: 0)
        // Due in 5 s: the first read must still find it parked on a machine running every suite at once.
        let id = try await stack.submit("work", extra: #","delay":"5s""#)
        func row() async throws -> (status: String?, dispatched: String?) {
            try await stack.coordinator.postgres.withSession { session in
                let row = try session.query("SELECT status, dispatched FROM tasks WHERE id = $1", [String(id)]).rows.first
                return (row?[0] ?? nil, row?[1] ?? nil)
            }
        }
        let deadline = ContinuousClock.now + .seconds(60)
        var current = try await row()
        #expect(current.status == "scheduled")
        while current.status == "scheduled" && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            current = try await row()
        }
        #expect(current.status == "queued" && current.dispatched == "t")
        try await stack.stop()
    }

    @Test("run_at in RFC 3339 works in a batch; a time that has passed runs now; delay and run_at together are a 400")
    func runAtAndValidation() async throws {
        let stack = try await Stack.start(registry: registry, handlers: handlers(ExecutionLog()))
        // Twenty seconds ahead: a loaded two-core machine once took more than 800 ms to answer the batch, and
        // single requests there have taken several seconds.
        let soon = UTCTime.format(millis: WallClock.nowMillis() + 20_000)
        let batch = try await stack.post("/v1/tasks/batch", """
            {"tasks":[{"type":"work","run_at":"\(soon)"},{"type":"work","run_at":"2001-01-01T00:00:00Z"},{"type":"work","delay":2}]}
            """)
        #expect(batch.status == 201)
        let statuses = (batch.json?["tasks"]?.arrayValue ?? []).compactMap { $0["status"]?.stringValue }
        #expect(statuses == ["scheduled", "queued", "scheduled"])
        let ids = (batch.json?["tasks"]?.arrayValue ?? []).compactMap { $0["id"]?.intValue }
        #expect(try await stack.waitUntilTerminal(ids).values.allSatisfy { $0 == .succeeded })

        let both = try await stack.post("/v1/tasks", #"{"type":"work","delay":"1s","run_at":"2030-01-01T00:00:00Z"}"#)
        #expect(both.status == 400 && both.json?["error"]?["code"]?.stringValue == "invalid_schedule")
        let badTime = try await stack.post("/v1/tasks", #"{"type":"work","run_at":"tomorrow"}"#)
        #expect(badTime.status == 400 && badTime.body.contains("RFC 3339"))
        let tooFar = try await stack.post("/v1/tasks", #"{"type":"work","delay":"400d"}"#)
        #expect(tooFar.status == 400 && tooFar.body.contains("366 days"))
        let negative = try await stack.post("/v1/tasks", #"{"type":"work","delay":-5}"#)
        #expect(negative.status == 400)
        try await stack.stop()
    }

    @Test("a cancelled scheduled task never runs, and cancelling it again is a 409")
    func cancelScheduled() async throws {
        let log = ExecutionLog()
        let stack = try await Stack.start(registry: registry, handlers: handlers(log))
        // Due in 10 s: the cancel lands well before, even on a machine running every suite at once (a CI run
        // once took more than 3 s between the submission and the cancel's answer). Then wait past the due time.
        let submitted = ContinuousClock.now
        let id = try await stack.submit("work", extra: #","delay":"10s""#)
        let cancel = try await stack.postRetryingUnavailable("/v1/tasks/\(id)/cancel", "")
        #expect(cancel.status == 200)
        try await Task.sleep(until: submitted + .seconds(12), clock: .continuous)
        #expect(log.executions[id] == nil)
        #expect(try await stack.task(id)["status"]?.stringValue == "cancelled")
        #expect(try await stack.post("/v1/tasks/\(id)/cancel", "").status == 409)
        try await stack.stop()
    }

    @Test("scheduled tasks survive Redis losing its data: the Reconciler parks them again and they run at their time")
    func survivesRedisLoss() async throws {
        let log = ExecutionLog()
        let stack = try await Stack.start(registry: registry, handlers: handlers(log)) { configuration in
            configuration.dispatchGrace = .zero
            configuration.reconcileInterval = .milliseconds(200)
        }
        var ids: [Int64] = []
        // Due in 30 s: on a loaded CI machine five POSTs and a pass took long enough for 8 s to run out,
        // and once for 15 s (one task was already due and forwarded when the check below ran).
        for _ in 0..<5 { ids.append(try await stack.submit("work", extra: #","delay":"30s""#)) }
        // Wait for a reconciliation pass to see them parked.
        try await Task.sleep(for: .milliseconds(600))
        let literal = PostgresArrayLiteral.integers(ids)
        let parked = try await stack.coordinator.postgres.withSession { session in
            try session.query("SELECT count(*) FROM tasks WHERE id = ANY($1::bigint[]) AND status = 'scheduled'", [literal]).rows.first?[0]
        }
        try #require(parked == "5", "all still parked when Redis loses its data")
        let keys = try await stack.coordinator.redis.send(RedisCommand("KEYS", [stack.environment.keys.prefix + ":*"]))
        _ = try await stack.coordinator.redis.send(RedisCommand("DEL", (keys.array ?? []).compactMap(\.string)))
        #expect(try await stack.waitUntilTerminal(ids, timeout: .seconds(60)).values.allSatisfy { $0 == .succeeded })
        #expect(ids.allSatisfy { log.executions[$0] == 1 }, "\(log.executions)")
        let errors = try await startErrors(ids, on: stack)
        #expect(errors.allSatisfy { $0 >= 0 }, "none early: \(errors)")
        try await stack.stop()
    }

    @Test("scheduled tasks survive a restart of the whole stack")
    func survivesRestart() async throws {
        let log = ExecutionLog()
        let first = try await Stack.start(registry: registry, agents: 0, handlers: handlers(log))
        let id = try await first.submit("work", extra: #","delay":"2s""#)
        let environment = first.environment
        try await first.stop()
        let second = try await Stack.start(registry: registry, handlers: handlers(log), environment: environment)
        #expect(try await second.waitUntilTerminal([id], timeout: .seconds(20))[id] == .succeeded)
        #expect(log.executions[id] == 1)
        try await second.stop()
    }

    @Test("under load, scheduled tasks are released on time (P99) and none starts early")
    func startTimeErrorUnderLoad() async throws {
        let stack = try await Stack.start(registry: registry, agents: 2, concurrency: 500, handlers: handlers(ExecutionLog()))
        // Six seconds ahead: on a loaded CI machine the four batches took over two, and a run_at already
        // past when its batch arrives is an immediate task (no run_at to measure against).
        let start = WallClock.nowMillis() + 6000
        // 2,000 tasks scheduled over 3 seconds; immediate ones flood the same queue and agents while they
        // come due.
        var due: [Int64: Int64] = [:]  // task → when it was both due and accepted (a batch answered late is due late)
        for batch in 0..<4 {
            let runAts = (0..<500).map { index in start + Int64((batch * 500 + index) * 3000 / 2000) }
            let elements = runAts.map { "{\"type\":\"work\",\"run_at\":\"\(UTCTime.format(millis: $0))\"}" }
            let reply = try await stack.post("/v1/tasks/batch", "{\"tasks\":[" + elements.joined(separator: ",") + "]}")
            let accepted = WallClock.nowMillis()
            #expect(reply.status == 201)
            for (id, runAt) in zip((reply.json?["tasks"]?.arrayValue ?? []).compactMap { $0["id"]?.intValue }, runAts) {
                due[id] = max(runAt, accepted)
            }
        }
        // The flood lasts until the last scheduled task is due: 500 noop tasks every 100 ms at most (up to
        // 5,000 a second, more than two agents finish), gentle enough for the rest of the test suite,
        // which runs at the same time on the same machine.
        let floodEnd = start + 3500
        var flooded = 0
        let body = "{\"tasks\":[" + Array(repeating: #"{"type":"noop"}"#, count: 500).joined(separator: ",") + "]}"
        while WallClock.nowMillis() < floodEnd {
            _ = try await stack.post("/v1/tasks/batch", body)
            flooded += 500
            try await Task.sleep(for: .milliseconds(100))
        }
        print("scheduled tasks under load: \(flooded) immediate tasks submitted while they came due")
        let ids = Array(due.keys)
        #expect(try await stack.waitUntilTerminal(ids, timeout: .seconds(60)).values.allSatisfy { $0 == .succeeded })
        let starts = try await startErrors(ids, on: stack).sorted()
        let literal = PostgresArrayLiteral.integers(ids)
        let released = try await stack.coordinator.postgres.withSession { session in
            try session.query("""
                SELECT task_id, (extract(epoch FROM at) * 1000)::bigint FROM task_events
                WHERE task_id = ANY($1::bigint[]) AND status = 'queued' AND agent = 'forwarder'
                """, [literal]).rows.compactMap { row -> (Int64, Int64)? in
                    guard let id = row[0].flatMap({ Int64($0) }), let at = row[1].flatMap({ Int64($0) }) else { return nil }
                    return (id, at)
                }
        }
        let releases = released.compactMap { id, at in due[id].map { at - $0 } }.sorted()
        if starts.count != 2000 {
            // Say which tasks have no start time, and their history.
            let rows = try await stack.coordinator.postgres.withSession { session in
                try session.query("""
                    SELECT t.id, t.status, t.started_at, t.run_at, t.attempts,
                           (SELECT string_agg(e.status || '@' || e.attempt || ':' || e.agent, ' ' ORDER BY e.at) FROM task_events e WHERE e.task_id = t.id)
                    FROM tasks t WHERE t.id = ANY($1::bigint[]) AND (t.started_at IS NULL OR t.run_at IS NULL) LIMIT 5
                    """, [literal]).rows
            }
            print("scheduled tasks under load: without a start: \(rows)")
        }
        #expect(starts.count == 2000 && releases.count == 2000)
        func p(_ values: [Int64], _ fraction: Double) -> Int64 { values.isEmpty ? -1 : values[max(0, Int(Double(values.count) * fraction) - 1)] }
        // The start also waits for a free agent slot behind the flood (and, when the whole test suite runs
        // at once, for a CPU): printed, not bounded. The release is the broker's promise.
        print("scheduled tasks under load: start − run_at P50 \(p(starts, 0.5)) ms, P99 \(p(starts, 0.99)) ms, max \(starts.last ?? -1) ms; "
            + "release − due P50 \(p(releases, 0.5)) ms, P99 \(p(releases, 0.99)) ms, max \(releases.last ?? -1) ms")
        #expect(starts.first ?? -1 >= 0, "no task starts before its time")
        // Alone, this measures a release P99 of about 20 ms (docs/performance.md). The whole suite runs at
        // once on two cores, and then the coordinator and Redis wait for a CPU too (881 ms seen): the
        // bound leaves room for that, and still fails a Forwarder that stops releasing or a release that
        // waits for something else (the next reconciliation, a restart).
        #expect(p(releases, 0.99) < 2000)
        try await stack.stop()
    }
}
