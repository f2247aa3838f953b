import ConveyorAgent
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
        TaskTypeDefinition(name: "work", maxConcurrent: 10, maxAttempts: 3, handler: "noop"),
    ])

    /// Submits one task; returns the status and how long the answer took.
    private func timedSubmit(_ stack: Stack) async throws -> (Stack.Reply, Duration) {
        let clock = ContinuousClock()
        let started = clock.now
        let reply = try await stack.post("/v1/tasks", #"{"type":"work"}"#, timeout: .seconds(30))
        return (reply, clock.now - started)
    }

    @Test("a frozen PostgreSQL: 503 with Retry-After within seconds, /ready names it, and submissions succeed again after SIGCONT")
    func frozenPostgres() async throws {
        let environment = try await TestServers.shared.environment(name: "pgfreeze", ownPostgres: true)
        let stack = try await Stack.start(registry: registry, agents: 1, environment: environment) { configuration in
            configuration.postgres.statementTimeout = .seconds(2)
        }
        let before = try await stack.submit("work")
        environment.postgresServer.freeze()
        let (refused, took) = try await timedSubmit(stack)
        let ready = try await stack.get("/ready")
        environment.postgresServer.thaw()
        #expect(refused.status == 503)
        #expect(refused.headers.first(name: "Retry-After") != nil)
        #expect(took < .seconds(8), "answered after \(took)")
        #expect(ready.status == 503)
        #expect(ready.json?["postgres"]?.stringValue != "ok")
        #expect(ready.json?["redis"]?.stringValue == "ok")

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

    @Test("a frozen Redis: 503 with Retry-After within seconds, /ready names it, and submissions succeed again after SIGCONT")
    func frozenRedis() async throws {
        let environment = try await TestServers.shared.environment(name: "redisfreeze", ownRedis: true)
        let stack = try await Stack.start(registry: registry, agents: 1, environment: environment) { configuration in
            configuration.redis.commandTimeout = .seconds(1)
        }
        let before = try await stack.submit("work")
        environment.redisServer.freeze()
        let (refused, took) = try await timedSubmit(stack)
        let ready = try await stack.get("/ready")
        environment.redisServer.thaw()
        #expect(refused.status == 503)
        #expect(refused.headers.first(name: "Retry-After") != nil)
        #expect(took < .seconds(8), "answered after \(took)")
        #expect(ready.status == 503)
        #expect(ready.json?["redis"]?.stringValue != "ok")
        #expect(ready.json?["postgres"]?.stringValue == "ok")

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
}
