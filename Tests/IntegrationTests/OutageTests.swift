import ConveyorAgent
import ConveyorCore
import ConveyorEmbedded
import ConveyorRedis
import ConveyorTesting
import Testing

@Suite("Outages of PostgreSQL and Redis")
struct OutageTests {
    private let registry = TaskTypeRegistry([
        TaskTypeDefinition(name: "work", maxConcurrent: 10, maxAttempts: 3, handler: "work"),
    ])

    /// Where the default queue's work sits in Redis, for a failure message.
    private static func redisState(_ stack: Stack) async throws -> String {
        let keys = stack.environment.keys
        let queue = TaskTypeDefinition.defaultQueue
        let redis = RedisConnection(configuration: stack.environment.redis, logger: TestServers.quietLogger)
        var labels: [String] = []
        for stream in keys.readyStreams(queue) { labels += ["groups \(stream)", "pending \(stream)", "entries \(stream)"] }
        labels += ["delayed", "limit running", "limit waiting"]
        var commands = keys.readyStreams(queue).flatMap { stream in
            [RedisCommand("XINFO", ["GROUPS", stream]), RedisCommand("XPENDING", [stream, RedisKeys.agentsGroup, "-", "+", "10"]),
             RedisCommand("XRANGE", [stream, "-", "+", "COUNT", "5"])]
        }
        commands.append(RedisCommand("ZRANGE", [keys.delayed(queue), "0", "-1", "WITHSCORES"]))
        let limit = keys.limit(queue, type: "work")
        commands.append(RedisCommand("ZRANGE", [limit.running, "0", "-1", "WITHSCORES"]))
        commands.append(RedisCommand("LRANGE", [limit.waiting, "0", "-1"]))
        let replies = try await redis.send(commands)
        return zip(labels, replies).map { "\($0) → \($1)" }.joined(separator: "\n")
    }

    /// Events on the default queue's events stream (an entry may hold a batch of them).
    private func eventsWaiting(_ stack: Stack) async throws -> Int64 {
        let reply = try await stack.coordinator.redis.send(RedisCommand("XRANGE", [stack.environment.keys.events(TaskTypeDefinition.defaultQueue), "-", "+"]))
        let entries = try (reply.array ?? []).map { reply throws(RedisError) in try StreamEntry(reply: reply) }
        return Int64(entries.reduce(0) { $0 + LifecycleEvent.events(inEntry: $1.fields ?? [:]).count })
    }

    @Test("with PostgreSQL down, submissions get 503 with Retry-After, agents finish their tasks, and the Recorder catches up")
    func postgresDown() async throws {
        let environment = try await TestServers.shared.environment(name: "pgdown", ownPostgres: true)
        let release = Promise<Void>()
        let log = ExecutionLog()
        var handlers = HandlerSet.builtIns
        handlers.register("work") { task in
            log.begin(task.id)
            defer { log.end() }
            try await release.value
            return nil
        }
        let stack = try await Stack.start(registry: registry, agents: 1, handlers: handlers, environment: environment)
        var ids: [Int64] = []
        for _ in 0..<3 { ids.append(try await stack.submit("work")) }
        for _ in 0..<200 where log.executions.count < 3 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(log.executions.count == 3)

        await environment.postgresServer.stop(removeDirectory: false)
        let refused = try await stack.post("/v1/tasks", #"{"type":"work"}"#)
        #expect(refused.status == 503)
        #expect(refused.headers.first(name: "Retry-After") != nil)
        #expect(refused.json?["error"]?["code"]?.stringValue != nil)

        // The agent needs Redis only: it finishes, and the outcomes wait in the events stream.
        release.succeed(())
        var waiting: Int64 = 0
        for _ in 0..<200 {
            waiting = try await eventsWaiting(stack)
            if waiting >= 3 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(waiting >= 3, "outcomes kept in Redis while PostgreSQL is down")

        try await environment.postgresServer.restart(logger: TestServers.quietLogger)
        let statuses = try await stack.waitUntilTerminal(ids, timeout: .seconds(30))
        #expect(statuses.values.allSatisfy { $0 == .succeeded })
        var accepted = 0
        for _ in 0..<100 where accepted != 201 {
            accepted = try await stack.post("/v1/tasks", #"{"type":"work"}"#).status
            if accepted != 201 { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(accepted == 201)
        try await stack.stop()
    }

    /// A stack with one agent running `work` (logged), on its own Redis, reconciling every 200 ms.
    private func workStack(name: String, dispatchGrace: Duration? = nil) async throws -> (Stack, ExecutionLog, TestEnvironment) {
        let environment = try await TestServers.shared.environment(name: name, ownRedis: true)
        let log = ExecutionLog()
        var handlers = HandlerSet.builtIns
        handlers.register("work", log.handler())
        let stack = try await Stack.start(registry: registry, agents: 1, handlers: handlers, environment: environment) { configuration in
            configuration.reconcileInterval = .milliseconds(200)
            if let dispatchGrace { configuration.dispatchGrace = dispatchGrace }
        }
        return (stack, log, environment)
    }

    @Test("with Redis killed, submissions get 503; after it restarts from its AOF everything reconnects and work flows again")
    func redisKilled() async throws {
        let (stack, log, environment) = try await workStack(name: "redisdown")
        let before = try await stack.submit("work")
        #expect(try await stack.waitUntilTerminal([before])[before] == .succeeded)

        let server = environment.redisServer
        server.kill()
        try await Task.sleep(for: .milliseconds(200))
        let refused = try await stack.post("/v1/tasks", #"{"type":"work"}"#)
        #expect(refused.status == 503)
        #expect(refused.headers.first(name: "Retry-After") != nil)
        try await Task.sleep(for: .seconds(1))  // every loop is backing off, none has crashed

        let restarted = try await LocalRedisServer.start(
            appendOnly: true, port: server.port, directory: server.directory, logger: TestServers.quietLogger)
        ExitCleanup.register(redis: restarted)
        var after: Int64?
        for _ in 0..<100 where after == nil {
            let reply = try await stack.post("/v1/tasks", #"{"type":"work"}"#)
            if reply.status == 201 { after = reply.json?["id"]?.intValue } else { try await Task.sleep(for: .milliseconds(100)) }
        }
        let id = try #require(after)
        do {
            #expect(try await stack.waitUntilTerminal([id], timeout: .seconds(30))[id] == .succeeded)
        } catch {
            Issue.record("task \(id) not terminal; Redis: \(try await Self.redisState(stack))")
        }
        #expect(log.executions[before] == 1)
        try await stack.stop()
        await restarted.stop()
    }

    /// From its COMMIT on, a task with an idempotency key may already have been handed to another
    /// submission of the same key (on this or another coordinator): withdrawing it after a failed XADD
    /// would lose a task that client was told exists. The chaos run found it as a missing schedule tick.
    /// Redis refuses XADD and ZADD here by ACL, so every flush fails exactly after its COMMIT.
    @Test("when Redis refuses the XADD or ZADD after the COMMIT, a task with an idempotency key is kept: its submission gets 201, the same key finds it, and it runs (at its time, if scheduled) once Redis takes them again; tasks without a key are withdrawn with a 503 that says which were kept")
    func keyedTaskIsKeptWhenDispatchFails() async throws {
        let (stack, log, environment) = try await workStack(name: "keptkeyed", dispatchGrace: .milliseconds(500))
        let before = try await stack.submit("work")
        #expect(try await stack.waitUntilTerminal([before])[before] == .succeeded)

        let redis = RedisConnection(configuration: environment.redis, logger: TestServers.quietLogger)
        _ = try await redis.send(RedisCommand("ACL", ["SETUSER", "default", "-xadd", "-zadd"]))
        let keyed = try await stack.post("/v1/tasks", #"{"type":"work"}"#, headers: [("Idempotency-Key", "kept-1")])
        #expect(keyed.status == 201, "\(keyed.body)")
        let id = try #require(keyed.json?["id"]?.intValue)
        let again = try await stack.post("/v1/tasks", #"{"type":"work"}"#, headers: [("Idempotency-Key", "kept-1")])
        #expect(again.status == 200, "\(again.body)")
        #expect(again.json?["id"]?.intValue == id)
        let unkeyed = try await stack.post("/v1/tasks", #"{"type":"work"}"#)
        #expect(unkeyed.status == 503, "\(unkeyed.body)")
        #expect(unkeyed.json?["error"]?["message"]?.stringValue?.contains("nothing was stored") == true, "\(unkeyed.body)")
        let mixed = try await stack.post(
            "/v1/tasks/batch", #"{"tasks":[{"type":"work","idempotency_key":"kept-2"},{"type":"work"}]}"#)
        #expect(mixed.status == 503, "\(mixed.body)")
        #expect(mixed.json?["error"]?["message"]?.stringValue?.contains("those with an idempotency key were kept") == true, "\(mixed.body)")
        // Stored: the task before the refusal and the two keyed ones; the ones without a key were withdrawn.
        let counts = try await stack.coordinator.store.countByStatus()
        #expect(counts[.succeeded] == 1 && counts[.queued] == 2, "\(counts)")
        let retried = try await stack.post("/v1/tasks/batch", #"{"tasks":[{"type":"work","idempotency_key":"kept-2"}]}"#)
        #expect(retried.status == 200, "\(retried.body)")
        let second = try #require(retried.json?["tasks"]?.ids.first)
        // A scheduled one, whose ZADD into the delayed set was refused: kept, parked by the Reconciler later.
        let delayed = try await stack.post(
            "/v1/tasks", #"{"type":"work","delay":"1s"}"#, headers: [("Idempotency-Key", "kept-3")])
        #expect(delayed.status == 201, "\(delayed.body)")
        let third = try #require(delayed.json?["id"]?.intValue)
        #expect(try await stack.coordinator.store.countByStatus()[.scheduled] == 1)

        _ = try await redis.send(RedisCommand("ACL", ["SETUSER", "default", "+xadd", "+zadd"]))
        let statuses = try await stack.waitUntilTerminal([id, second, third], timeout: .seconds(30))
        #expect(statuses[id] == .succeeded && statuses[second] == .succeeded && statuses[third] == .succeeded, "\(statuses)")
        #expect(log.executions[id] == 1 && log.executions[second] == 1 && log.executions[third] == 1)
        #expect(try await stack.coordinator.store.countByStatus() == [.succeeded: 4])
        redis.close()
        try await stack.stop()
    }
}
