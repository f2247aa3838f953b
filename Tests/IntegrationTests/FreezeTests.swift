import ConveyorAgent
import ConveyorCoordinator
import ConveyorCore
import ConveyorEmbedded
import ConveyorRedis
import ConveyorTesting
import Testing

/// A backend that accepts connections but never answers (SIGSTOP) must not hang anything: submissions
/// get 503 with Retry-After within a few seconds, /ready names the backend, and everything recovers by
/// itself after SIGCONT.
@Suite("Frozen backends")
struct FreezeTests {
    private let registry = TaskTypeRegistry([
        // A short lease: a read the client gave up on during the freeze is still answered by Redis after
        // SIGCONT, into the dropped connection, so its entries wait on this agent until their lease runs
        // out and the Reclaimer takes them (at-least-once; delayed by one lease, never lost).
        TaskTypeDefinition(name: "work", maxConcurrent: 10, maxAttempts: 3, handler: "noop", lease: .seconds(2)),
    ])

    /// Freezes one backend under a running stack, checks the refusal, `/ready` and the time both took,
    /// thaws it, and checks that submissions succeed again by themselves.
    private func freezeAndRecover(
        _ environment: TestEnvironment, frozen: String, healthy: String, freeze: () -> Void, thaw: () -> Void,
        configure: (inout CoordinatorConfiguration) -> Void
    ) async throws {
        let stack = try await Stack.start(registry: registry, agents: 1, environment: environment, configure: configure)
        let before = try await stack.submit("work")
        freeze()
        let clock = ContinuousClock()
        let started = clock.now
        let refused = try await stack.post("/v1/tasks", #"{"type":"work"}"#, timeout: .seconds(30))
        let took = clock.now - started
        let ready = try await stack.get("/ready")
        thaw()
        #expect(refused.status == 503)
        #expect(refused.headers.first(name: "Retry-After") != nil)
        // The backend's timeout answers it (PostgreSQL's statement timeout of 2 s, Redis' command
        // timeout); without one the request would hang for the client's 30 s. The bound sits between
        // the two with room for a loaded machine: in the parallel phase of a full local run, where simple
        // tests took 30–45 s, the PostgreSQL case took 11.6 s once.
        #expect(took < .seconds(15), "answered after \(took)")
        #expect(ready.status == 503)
        #expect(ready.json?[frozen]?.stringValue != "ok")
        #expect(ready.json?[healthy]?.stringValue == "ok")

        var after: Int64?
        for _ in 0..<100 where after == nil {
            after = try? await stack.submit("work")
            if after == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        let id = try #require(after)
        let statuses = try await stack.waitUntilTerminal([before, id], timeout: .seconds(30))
        #expect(statuses.values.allSatisfy { $0 == .succeeded })
        try await stack.stop()
    }

    @Test("a frozen PostgreSQL: 503 with Retry-After within seconds, /ready names it, and submissions succeed again after SIGCONT")
    func frozenPostgres() async throws {
        let environment = try await TestServers.shared.environment(name: "pgfreeze", ownPostgres: true)
        try await freezeAndRecover(
            environment, frozen: "postgres", healthy: "redis",
            freeze: environment.postgresServer.freeze, thaw: environment.postgresServer.thaw
        ) { $0.postgres.statementTimeout = .seconds(2) }
    }

    @Test("a full Submitter queue sheds submissions at once with 503 overloaded and Retry-After; what it accepted is stored and runs")
    func fullQueueSheds() async throws {
        let environment = try await TestServers.shared.environment(name: "shedding", ownPostgres: true)
        // Unlimited and with the default lease: this test is about admission, not about flow limits.
        let registry = TaskTypeRegistry([TaskTypeDefinition(name: "work", maxConcurrent: nil, handler: "noop")])
        let stack = try await Stack.start(registry: registry, agents: 1, environment: environment) { configuration in
            configuration.submitQueueMaxTasks = 1000
            configuration.postgres.statementTimeout = .seconds(30)
            // One pooled connection, opened by the warm-up below: a flush sent to a pooled connection not
            // yet open would try to connect to the frozen server and fail (seen in CI), not wait.
            configuration.postgres.poolSize = 1
        }
        let warmUp = try await stack.post("/v1/tasks", #"{"type":"work"}"#)
        #expect(warmUp.status == 201)
        let batch = "{\"tasks\":[" + Array(repeating: #"{"type":"work"}"#, count: 1000).joined(separator: ",") + "]}"
        environment.postgresServer.freeze()
        // The first batch is taken by the flush, which waits on the frozen PostgreSQL; the second fills
        // the queue behind it.
        let first = Task { try await stack.post("/v1/tasks/batch", batch) }
        // Until the flush holds it, not a fixed time: had both arrived before the flush began, it would
        // take both (its batch holds 5,000) and leave the queue empty.
        for _ in 0..<300 where stack.coordinator.submitter.tasksBeingStored != 1000 { try await Task.sleep(for: .milliseconds(50)) }
        let second = Task { try await stack.post("/v1/tasks/batch", batch) }
        // Until the queue is full, not a fixed time: on a loaded CI machine parsing the two bodies took
        // longer than the half second this used to wait, and the probes below then queued instead.
        for _ in 0..<300 where !stack.coordinator.submitter.isFull { try await Task.sleep(for: .milliseconds(50)) }
        let clock = ContinuousClock()
        let started = clock.now
        let shedSingle = try await stack.post("/v1/tasks", #"{"type":"work"}"#, timeout: .seconds(10))
        let shedBatch = try await stack.post("/v1/tasks/batch", #"{"tasks":[{"type":"work"}]}"#, timeout: .seconds(10))
        let took = clock.now - started
        environment.postgresServer.thaw()
        for shed in [shedSingle, shedBatch] {
            #expect(shed.status == 503)
            #expect(shed.json?["error"]?["code"]?.stringValue == "overloaded")
            #expect(shed.headers.first(name: "Retry-After") == "1")
        }
        // `overloaded` (above) is what shows the requests were shed rather than queued: a queued one
        // gets no answer before the thaw, and its client gives up after 10 s. The bound only adds that
        // neither waited long, with room for a loaded machine (the two took 8.6 s
        // once in the parallel phase of a full local run, where simple tests took 30–45 s).
        #expect(took < .seconds(15), "shedding must not wait: answered after \(took)")

        var ids: [Int64] = []
        for reply in [try await first.value, try await second.value] {
            #expect(reply.status == 201)
            ids += (reply.json?["tasks"]?.arrayValue ?? []).compactMap { $0["id"]?.intValue }
        }
        #expect(ids.count == 2000)
        let statuses = try await stack.waitUntilTerminal(ids, timeout: .seconds(60))
        #expect(statuses.count == 2000 && statuses.values.allSatisfy { $0 == .succeeded })
        // The metrics registry is the test process's: other tests may count too, so only its presence.
        let metrics = try await stack.request(.GET, "/metrics", token: nil)
        #expect(metrics.body.contains("conveyor_submissions_shed_total "))
        try await stack.stop()
    }

    @Test("a frozen Redis: 503 with Retry-After within seconds, /ready names it, and submissions succeed again after SIGCONT")
    func frozenRedis() async throws {
        let environment = try await TestServers.shared.environment(name: "redisfreeze", ownRedis: true)
        try await freezeAndRecover(
            environment, frozen: "redis", healthy: "postgres",
            freeze: environment.redisServer.freeze, thaw: environment.redisServer.thaw
        ) { $0.redis.commandTimeout = .seconds(1) }
    }
}
