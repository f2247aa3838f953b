import ConveyorAgent
import ConveyorCore
import ConveyorRedis
import ConveyorTesting
import Foundation
import Testing

/// The order work starts in: priorities within a queue, and pausing and resuming a queue or a type.
@Suite("Priorities, pause and resume", .serialized)
struct PriorityAndPauseTests {
    /// Task ids in the order the in-process handler started them.
    final class StartOrder: Sendable {
        private let state = Mutex<[(Int64, Int64)]>([])
        func record(_ id: Int64) { state.withLock { $0.append((id, WallClock.nowMillis())) } }
        var ids: [Int64] { state.withLock { $0.map(\.0) } }
        var times: [Int64] { state.withLock { $0.map(\.1) } }
    }

    private func recordingHandlers(_ order: StartOrder, name: String, sleep: Duration = .milliseconds(5)) -> HandlerSet {
        var handlers = HandlerSet.builtIns
        handlers.register(name, ClosureHandler { task in
            order.record(task.id.rawValue)
            let ms = task.params["ms"]?.intValue.map { Duration.milliseconds($0) } ?? sleep
            try await Task.sleep(for: ms)
            return nil
        })
        return handlers
    }

    @Test("higher priority starts first; low priority still gets about a tenth of the starts while higher ones wait")
    func priorityOrder() async throws {
        let registry = TaskTypeRegistry([TaskTypeDefinition(name: "job", maxConcurrent: nil, handler: "job")])
        let order = StartOrder()
        let stack = try await Stack.start(registry: registry, agents: 0)
        var elements: [String] = []
        for priority in ["low", "normal", "high"] {
            elements += Array(repeating: "{\"type\":\"job\",\"priority\":\"\(priority)\"}", count: 60)
        }
        let reply = try await stack.post("/v1/tasks/batch", "{\"tasks\":[" + elements.joined(separator: ",") + "]}")
        let ids = try #require(reply.json?["tasks"]?.arrayValue?.compactMap { $0["id"]?.intValue })
        let priorityOf = Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($0.element, $0.offset / 60) })  // 0 low … 2 high
        #expect(try await stack.task(ids[130])["priority"]?.stringValue == "high")
        // One agent with two slots: the order of starts is the order it reads.
        let agent = try stack.startAgent(id: "reader", registry: registry, handlers: recordingHandlers(order, name: "job"), concurrency: 2)
        _ = try await stack.waitUntilTerminal(ids, timeout: .seconds(60))
        let started = order.ids
        let times = order.times
        #expect(times.last! - times.first! < 20_000, "no entry was taken and forgotten until its lease ran out")
        let firstSixty = started.prefix(60).map { priorityOf[$0]! }
        let counts = (0...2).map { level in firstSixty.filter { $0 == level }.count }
        print("priority: of the first 60 starts, low \(counts[0]), normal \(counts[1]), high \(counts[2])")
        func meanRank(_ level: Int) -> Double {
            let ranks = started.enumerated().filter { priorityOf[$0.element] == level }.map { Double($0.offset) }
            return ranks.reduce(0, +) / Double(ranks.count)
        }
        #expect(meanRank(2) < meanRank(1) && meanRank(1) < meanRank(0), "high starts first, then normal, then low")
        #expect(counts[2] >= 30, "high takes most of the first starts")
        #expect(counts[0] >= 2, "low is not starved while higher priorities have work")
        try await agent.stop()
        try await stack.stop()
    }

    @Test("a paused type waits (visible in /status) while others run and its running task finishes; the pause survives restarts and a Redis loss; resume runs the rest in order")
    func pauseAndResume() async throws {
        let registry = TaskTypeRegistry([
            TaskTypeDefinition(name: "work", maxConcurrent: nil, handler: "work"),
            TaskTypeDefinition(name: "noop", maxConcurrent: nil, handler: "noop"),
        ])
        let order = StartOrder()
        let handlers = recordingHandlers(order, name: "work")
        let fastReconcile: (inout CoordinatorConfiguration) -> Void = { configuration in
            configuration.reconcileInterval = .milliseconds(200)
            configuration.dispatchGrace = .milliseconds(500)
        }
        var stack = try await Stack.start(registry: registry, agents: 1, concurrency: 1, handlers: handlers, configure: fastReconcile)
        let environment = stack.environment
        let long = try await stack.submit("work", params: "{\"ms\":1500}")
        let started = ContinuousClock.now + .seconds(60)
        while order.ids.isEmpty, ContinuousClock.now < started { try await Task.sleep(for: .milliseconds(20)) }
        let paused = try await stack.post("/v1/types/work/pause", "{}")
        #expect(paused.status == 200 && paused.json?["paused"] == .bool(true))
        var waiting: [Int64] = []
        for _ in 0..<10 { waiting.append(try await stack.submit("work")) }
        var others: [Int64] = []
        for _ in 0..<10 { others.append(try await stack.submit("noop")) }
        let statuses = try await stack.waitUntilTerminal(others + [long], timeout: .seconds(30))
        #expect(statuses.values.allSatisfy { $0 == .succeeded }, "other types run, and the running task was not interrupted")
        try await Task.sleep(for: .milliseconds(500))
        for id in waiting { #expect(try await stack.task(id)["status"]?.stringValue == "queued") }
        #expect(order.ids == [long])
        let status = try #require(try await stack.get("/status").json?["queues"]?["default"])
        #expect(status["paused_types"]?.arrayValue?.compactMap(\.stringValue) == ["work"])
        #expect(status["types"]?["work"]?["parked_by_pause"]?.intValue == 10)
        let queues = try #require(try await stack.get("/v1/queues").json?["queues"]?.arrayValue?.first)
        #expect(queues["paused_types"]?.arrayValue?.compactMap(\.stringValue) == ["work"])

        // Every process restarts: the pause holds.
        try await stack.stop()
        stack = try await Stack.start(registry: registry, agents: 1, concurrency: 1, handlers: handlers, environment: environment, configure: fastReconcile)
        try await Task.sleep(for: .seconds(1))
        #expect(order.ids == [long])

        // Redis loses everything: the Reconciler writes the pause back before it re-dispatches the tasks.
        let redis = stack.coordinator.redis
        let keys = try await redis.send(RedisCommand("KEYS", [environment.keys.prefix + ":*"]))
        _ = try await redis.send(RedisCommand("DEL", (keys.array ?? []).compactMap(\.string)))
        var restored = false
        for _ in 0..<100 where !restored {
            try await Task.sleep(for: .milliseconds(100))
            restored = try await redis.send(RedisCommand("HEXISTS", [environment.keys.paused("default"), "work"])).integer == 1
        }
        #expect(restored, "the pause is back in Redis")
        var parked = 0
        for _ in 0..<100 where parked < 10 {
            try await Task.sleep(for: .milliseconds(100))
            parked = Int(try await redis.send(RedisCommand("LLEN", [environment.keys.pausedEntries("default", type: "work")])).integer ?? 0)
        }
        #expect(parked == 10, "the re-dispatched tasks were parked again, not run")
        #expect(order.ids == [long])

        let resumed = try await stack.post("/v1/types/work/resume", "{}")
        #expect(resumed.status == 200 && resumed.json?["requeued"]?.intValue == 10)
        let after = try await stack.waitUntilTerminal(waiting, timeout: .seconds(30))
        #expect(after.values.allSatisfy { $0 == .succeeded })
        #expect(Array(order.ids.dropFirst()) == waiting, "resumed in the order they were submitted")
        try await stack.stop()
    }

    @Test("a paused queue is not read at all; pause and resume need the admin scope and name unknown queues and types with 404")
    func pausedQueueAndErrors() async throws {
        let registry = TaskTypeRegistry([TaskTypeDefinition(name: "noop", maxConcurrent: nil, handler: "noop")])
        let stack = try await Stack.start(registry: registry, agents: 1) { configuration in
            configuration.apiTokens.append(APIToken(name: "reader", scopes: [.read, .submit], secret: "reader-token"))
        }
        #expect(try await stack.post("/v1/queues/default/pause", "{}").status == 200)
        // The agent learns of the pause from the first entry it takes (and parks); after that it reads
        // nothing from the queue: the next entries stay in the stream.
        var ids = [try await stack.submit("noop")]
        let parkedList = stack.environment.keys.pausedEntries("default", type: "noop")
        for _ in 0..<100 where try await stack.coordinator.redis.send(RedisCommand("LLEN", [parkedList])).integer != 1 {
            try await Task.sleep(for: .milliseconds(50))
        }
        for _ in 0..<4 { ids.append(try await stack.submit("noop")) }
        try await Task.sleep(for: .seconds(1))
        let ready = try await stack.coordinator.redis.send(RedisCommand("XLEN", [stack.environment.keys.ready("default")])).integer ?? 0
        #expect(ready == 4, "the entries stay in the stream, unread")
        let status = try #require(try await stack.get("/status").json?["queues"]?["default"])
        #expect(status["paused"] == .bool(true))
        #expect(try await stack.request(.POST, "/v1/queues/default/resume", body: "{}", token: "reader-token").status == 403)
        #expect(try await stack.post("/v1/queues/nowhere/pause", "{}").status == 404)
        #expect(try await stack.post("/v1/types/nothing/resume", "{}").status == 404)
        let resumed = try await stack.post("/v1/queues/default/resume", "{}")
        #expect(resumed.json?["was_paused"] == .bool(true))
        let statuses = try await stack.waitUntilTerminal(ids, timeout: .seconds(30))
        #expect(statuses.values.allSatisfy { $0 == .succeeded })
        try await stack.stop()
    }
}

import ConveyorCoordinator
import Synchronization
