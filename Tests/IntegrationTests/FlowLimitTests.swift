import ConveyorAgent
import ConveyorCore
import ConveyorEmbedded
import ConveyorRedis
import ConveyorTesting
import Foundation
import Testing

/// Cluster-wide limits against real Redis and PostgreSQL, measured from the agents' execution journal
/// (start and end of every attempt on every agent). One test at a time: they are heavy (ten agents, floods
/// of tasks), and the other suites' timing checks run beside them on two cores. The 60 s rate test is
/// last, when most other suites are done.
@Suite("Flow limits across every agent", .serialized)
struct FlowLimitTests {
    /// A stack whose agents all append to one execution journal; returns it with the journal's path.
    private func journaledStack(
        _ registry: TaskTypeRegistry, agents: Int, concurrency: Int, handlers: HandlerSet = .builtIns
    ) async throws -> (Stack, String) {
        let directory = try await LocalProcess.makeDirectory(prefix: "conveyor-flow", ownedByPostgres: false)
        let journal = "\(directory)/executions.journal"
        let stack = try await Stack.start(registry: registry, agents: agents, concurrency: concurrency, handlers: handlers) { _ in
        } configureAgent: { agent in
            agent.executionJournalPath = journal
        }
        return (stack, journal)
    }

    private func batch(_ elements: [String]) -> String { "{\"tasks\":[" + elements.joined(separator: ",") + "]}" }

    private func submitBatch(_ stack: Stack, _ elements: [String]) async throws -> [Int64] {
        var ids: [Int64] = []
        for start in stride(from: 0, to: elements.count, by: 1000) {
            let reply = try await stack.post("/v1/tasks/batch", batch(Array(elements[start..<min(start + 1000, elements.count)])))
            ids += try #require(reply.json?["tasks"]?.arrayValue?.compactMap { $0["id"]?.intValue }, "\(reply.status): \(reply.body)")
        }
        return ids
    }

    private func runs(_ journal: String, of ids: [Int64]) -> [ExecutionJournalFile.Run] {
        let wanted = Set(ids)
        return ExecutionJournalFile.runs(paths: [journal]).filter { wanted.contains($0.task) }
    }

    @Test("with 10 agents × 50 slots, a type limited to 5 never runs more than 5 at once, reaches 5, and leaves no slot held")
    func globalConcurrency() async throws {
        let registry = TaskTypeRegistry([
            TaskTypeDefinition(name: "limited", maxConcurrent: 5, handler: "sleep"),
            TaskTypeDefinition(name: "noop", maxConcurrent: nil, handler: "noop"),
        ])
        let (stack, journal) = try await journaledStack(registry, agents: 10, concurrency: 50)
        let limited = try await submitBatch(stack, Array(repeating: #"{"type":"limited","params":{"ms":100}}"#, count: 100))
        let noop = try await submitBatch(stack, Array(repeating: #"{"type":"noop"}"#, count: 100))
        let statuses = try await stack.waitUntilTerminal(limited + noop, timeout: .seconds(120))
        #expect(statuses.values.allSatisfy { $0 == .succeeded })
        let limitedRuns = runs(journal, of: limited)
        #expect(limitedRuns.count == 100)
        #expect(ExecutionJournalFile.maxOverlap(limitedRuns) == 5)
        #expect(Set(limitedRuns.map(\.agent)).count > 1, "the work spread over several agents")
        let keys = stack.environment.keys.limit("default", type: "limited")
        let redis = stack.coordinator.redis
        #expect(try await redis.send(RedisCommand("ZCARD", [keys.running])).integer == 0)
        #expect(try await redis.send(RedisCommand("LLEN", [keys.waiting])).integer == 0)
        let status = try #require(try await stack.get("/status").json)
        #expect(status["queues"]?["default"]?["types"]?["limited"]?["max_concurrent"]?.intValue == 5)
        try await stack.stop()
    }

    @Test("a burst lets that many start at once after a quiet spell; the rest follow at the rate")
    func burst() async throws {
        let registry = TaskTypeRegistry([
            TaskTypeDefinition(name: "bursty", maxConcurrent: nil, rateLimit: RateLimit(count: 5, period: .seconds(1), burst: 10), handler: "noop"),
        ])
        let (stack, journal) = try await journaledStack(registry, agents: 2, concurrency: 50)
        let ids = try await submitBatch(stack, Array(repeating: #"{"type":"bursty"}"#, count: 30))
        _ = try await stack.waitUntilTerminal(ids, timeout: .seconds(30))
        let starts = runs(journal, of: ids).map(\.startMillis).sorted()
        try #require(starts.count == 30)
        print("burst 10 at 5/s: the 10th start \(starts[9] - starts[0]) ms after the first, the 30th \(starts[29] - starts[0]) ms")
        #expect(starts[9] - starts[0] < 1000, "the burst of 10 starts at once")
        // Then one every 200 ms: the 30th is 20 intervals after the first.
        #expect(starts[29] - starts[0] >= 3_900)
        #expect(starts[10] - starts[0] >= 150)
        try await stack.stop()
    }

    @Test("a type held back by its rate occupies no agent slot and does not hold up another type on the same queue and agents")
    func noHeadOfLineBlocking() async throws {
        let registry = TaskTypeRegistry([
            TaskTypeDefinition(name: "slow_api", maxConcurrent: nil, rateLimit: RateLimit(count: 10, period: .seconds(1)), handler: "noop"),
            TaskTypeDefinition(name: "fast", maxConcurrent: nil, handler: "noop"),
        ])
        let (stack, journal) = try await journaledStack(registry, agents: 2, concurrency: 50)
        let clock = ContinuousClock()
        let aloneStart = clock.now
        let alone = try await submitBatch(stack, Array(repeating: #"{"type":"fast"}"#, count: 1500))
        _ = try await stack.waitUntilTerminal(alone, timeout: .seconds(120))
        let aloneTime = clock.now - aloneStart

        // The limited type first, so that it sits at the head of the stream.
        let limited = try await submitBatch(stack, Array(repeating: #"{"type":"slow_api"}"#, count: 1000))
        let mixedStart = clock.now
        let fast = try await submitBatch(stack, Array(repeating: #"{"type":"fast"}"#, count: 1500))
        _ = try await stack.waitUntilTerminal(fast, timeout: .seconds(120))
        let mixedTime = clock.now - mixedStart
        let limitedStarted = runs(journal, of: limited).count
        print("1500 fast tasks: \(aloneTime) alone, \(mixedTime) behind 1000 tasks limited to 10/s (\(limitedStarted) of those started)")
        // The precise comparison (within 10%) is a load-generator figure (docs/performance.md); on a test
        // machine running other suites at once, only a loose bound is fair.
        #expect(mixedTime < aloneTime * 2 + .seconds(2))
        #expect(Double(limitedStarted) <= 10 * mixedTime.seconds + 12)
        // Held back in the delayed set, not in any agent's hands: at most the few the Forwarder has just
        // released and an agent is admitting or running (2 on a quiet machine, 3 to 12 seen on a loaded
        // one), never a share of the 1,000.
        let pending = try await stack.coordinator.redis.send(RedisCommand("XPENDING", [stack.environment.keys.ready("default"), "agents"]))
        #expect((pending.array?.first?.integer ?? 0) <= 20)
        #expect((try await stack.coordinator.redis.send(RedisCommand("ZCARD", [stack.environment.keys.delayed("default")])).integer ?? 0) > 800)
        try await stack.stop()
    }

    @Test("ten customers flooding one type with per-key limits each get a fair share, never more than their own limit at once")
    func perKeyFairness() async throws {
        let registry = TaskTypeRegistry([
            TaskTypeDefinition(name: "llm", maxConcurrent: nil, perKey: KeyLimits(maxConcurrent: 2), handler: "sleep"),
        ])
        let (stack, journal) = try await journaledStack(registry, agents: 2, concurrency: 50)
        // Customer by customer: first come, first served would run customer 0's forty first.
        var elements: [String] = []
        for customer in 0..<10 {
            elements += Array(repeating: "{\"type\":\"llm\",\"params\":{\"ms\":50},\"limit_key\":\"customer-\(customer)\"}", count: 40)
        }
        let ids = try await submitBatch(stack, elements)
        _ = try await stack.waitUntilTerminal(ids, timeout: .seconds(120))
        let customerOf = Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($0.element, $0.offset / 40) })
        let all = runs(journal, of: ids).sorted { $0.startMillis < $1.startMillis }
        #expect(all.count == 400)
        var share = Array(repeating: 0, count: 10)
        for run in all.prefix(200) { share[customerOf[run.task]!] += 1 }
        print("per-key fairness, starts per customer among the first 200: \(share)")
        #expect(share.allSatisfy { (16...24).contains($0) }, "each within 20% of an equal share of 20")
        for customer in 0..<10 {
            let theirs = all.filter { customerOf[$0.task] == customer }
            #expect(ExecutionJournalFile.maxOverlap(theirs) == 2)
        }
        // Idle keys expire: each customer's state carries a time to live.
        let running = stack.environment.keys.limit("default", type: "llm", key: "customer-3").running
        let ttl = try await stack.coordinator.redis.send(RedisCommand("PTTL", [running])).integer ?? -1
        #expect(ttl == -2 || ttl > 0, "a per-key key is gone or expiring, never kept forever")
        try await stack.stop()
    }

    @Test("slots held by an agent killed with SIGKILL come back when their lease expires: not before, not twice")
    func killedAgentsSlotsReturnWithTheLease() async throws {
        try #require(AgentProcess.isBuilt, "build the conveyor binary first: swift build")
        let registry = TaskTypeRegistry([
            TaskTypeDefinition(name: "guarded", maxConcurrent: 2, handler: "sleep", lease: .seconds(2)),
        ])
        let stack = try await Stack.start(registry: registry, agents: 0)
        let agent = try await AgentProcess.start(
            on: stack, id: "doomed", registryYAML: "types:\n  guarded:\n    handler: sleep\n    max_concurrent: 2\n    lease: 2s\n")
        defer { agent.cleanUp() }
        let doomed = agent.process
        let journal = agent.journal
        // Two tasks that would run for an hour take both slots on the doomed agent.
        let hogs = [try await stack.submit("guarded", params: "{\"ms\":3600000}"), try await stack.submit("guarded", params: "{\"ms\":3600000}")]
        for _ in 0..<300 where ExecutionJournalFile.runs(paths: [journal]).count < 2 { try await Task.sleep(for: .milliseconds(50)) }
        try #require(ExecutionJournalFile.runs(paths: [journal]).count == 2, "the doomed agent never started both")

        let log = ExecutionLog()
        let started = StartTimes()
        var handlers = HandlerSet.builtIns
        handlers.register("sleep", ClosureHandler { task in
            started.record(task.id.rawValue)
            log.begin(task.id)
            defer { log.end() }
            try await Task.sleep(for: .milliseconds(300))
            return nil
        })
        let rescuer = try stack.startAgent(id: "rescuer", registry: registry, handlers: handlers)
        let waiting = [try await stack.submit("guarded"), try await stack.submit("guarded"), try await stack.submit("guarded")]
        try await Task.sleep(for: .milliseconds(500))
        #expect(started.count == 0, "both slots are held: nothing else starts")
        let killedAt = WallClock.nowMillis()
        doomed.signal(SIGKILL)
        #expect(await doomed.waitForExit() != 0)

        let statuses = try await stack.waitUntilTerminal(hogs + waiting, timeout: .seconds(30))
        #expect(statuses.values.allSatisfy { $0 == .succeeded })
        let firstStart = try #require(started.first)
        print("slots returned \(firstStart - killedAt) ms after the SIGKILL (lease 2 s)")
        // The lease was last renewed at most a third of it before the kill (on time), so the slots lapse
        // between 2/3 lease and lease after it; the Reclaimer or the reaper notices within half a lease
        // more. The lower bound leaves room for a renewal a loaded machine ran late.
        #expect(firstStart - killedAt >= 1000, "not before the lease ran out")
        #expect(firstStart - killedAt <= 3500, "within the lease and one reclaim pass")
        #expect(log.maxRunning <= 2, "never more than the limit, counting the killed agent's slots once")
        try await rescuer.stop()
        try await stack.stop()
    }

    @Test("a rate of 10/s holds within ±5% over 60 s, and no second ever sees more than the rate allows")
    func rateOverSixtySeconds() async throws {
        let registry = TaskTypeRegistry([
            TaskTypeDefinition(name: "rated", maxConcurrent: nil, rateLimit: RateLimit(count: 10, period: .seconds(1)), handler: "noop"),
        ])
        let (stack, journal) = try await journaledStack(registry, agents: 2, concurrency: 50)
        let ids = try await submitBatch(stack, Array(repeating: #"{"type":"rated"}"#, count: 700))
        var first: Int64?
        while first == nil {
            first = runs(journal, of: ids).map(\.startMillis).min()
            try await Task.sleep(for: .milliseconds(100))
        }
        try await Task.sleep(until: .now + .seconds(61))
        let starts = runs(journal, of: ids).map(\.startMillis).sorted()
        let inWindow = starts.filter { $0 < first! + 60_000 }.count
        print("rate 10/s: \(inWindow) starts in the first 60 s (600 ± 30 on a machine not also running every other suite)")
        // Never above the rate. Below it only when the machine is starved: releases that come back late
        // are spaced again rather than started in a bunch. Run alone, this test sees 600 ± 30
        // (`swift test --filter rateOverSixtySeconds`); beside the whole suite on two cores, less.
        #expect(inWindow <= 630)
        #expect(inWindow >= 480)
        // Burst 1: any window of length t holds at most 1 + 10 t starts (1 s: 11), give or take a
        // millisecond of rounding between Redis' clock and the agents'.
        for (index, start) in starts.enumerated() {
            let within = starts[index...].prefix { $0 < start + 1000 }.count
            #expect(within <= 12, "\(within) starts within a second from \(start)")
        }
        try await stack.stop()
    }
}

/// When each task first started on the in-process agent (Unix ms).
final class StartTimes: Sendable {
    private let state = Mutex<[Int64: Int64]>([:])

    func record(_ id: Int64) {
        state.withLock { if $0[id] == nil { $0[id] = WallClock.nowMillis() } }
    }

    var count: Int { state.withLock { $0.count } }
    var first: Int64? { state.withLock { $0.values.min() } }
}

import Synchronization
