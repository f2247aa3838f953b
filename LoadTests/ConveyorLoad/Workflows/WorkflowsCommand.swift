import ArgumentParser
import AsyncHTTPClient
import ConveyorCore
import ConveyorPostgres
import Foundation
import Logging
import NIOCore
import Synchronization

/// `conveyor-load workflows`: workflows (a root, parallel nodes, a join) at a fixed rate or as fast as the
/// broker takes them, optionally beside plain tasks, against an embedded stack. Reports how many ended
/// and how, the node throughput, the workflows' durations, and whether any node started before its
/// dependencies succeeded (task_events timestamps and the agents' journals).
struct WorkflowsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workflows",
        abstract: "Submit workflows (root → parallel nodes → join) beside plain tasks, and check every one.",
        discussion: """
            Examples:
              conveyor-load workflows --rate 1000/min --duration 300 --tasks 60000/min   (1,000 ten-node workflows a minute beside plain tasks)
              conveyor-load workflows --max --duration 60                                 (the workflow ceiling, in nodes per second)
            Exit status: 0 when every workflow succeeded in order and every plain task finished; 1 otherwise.
            """)

    @Option(help: "Workflows per time, e.g. 1000/min (open loop).") var rate: String?
    @Flag(help: "Closed loop: submit workflows as fast as the coordinator answers, --concurrency at once.") var max = false
    @Option(help: "Nodes per workflow, root and join included (3–10000).") var nodes = 10
    @Option(help: "Seconds to submit for.") var duration = 60
    @Option(help: "Plain noop tasks beside the workflows, e.g. 60000/min (single POSTs, open loop).") var tasks: String?
    @Option(help: "Workflow requests in flight with --max.") var concurrency = 8
    @Option(help: "Agents to start.") var agents = 2
    @Option(help: "Concurrency of each agent.") var agentConcurrency = 256
    @Option(help: "Seconds to wait after the load for every workflow to end.") var settle = 180
    @Option(help: "The conveyor binary (default: next to conveyor-load).") var conveyor: String?
    @Flag(help: "Keep the embedded stack's folder (logs, journals, data).") var keep = false

    func validate() throws {
        guard (rate != nil) != max else { throw ValidationError("give --rate or --max") }
        if let rate { _ = try LoadShape.rate(rate) }
        if let tasks { _ = try LoadShape.rate(tasks) }
        guard (3...10_000).contains(nodes) else { throw ValidationError("--nodes must be 3–10000") }
        guard duration > 0, concurrency > 0, (1...64).contains(agents), agentConcurrency > 0 else {
            throw ValidationError("--duration, --concurrency and --agent-concurrency must be positive, --agents 1–64")
        }
    }

    func run() async throws {
        let binary = conveyor ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("conveyor").path
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw ValidationError("no conveyor binary at \(binary): build it (swift build -c release) or pass --conveyor")
        }
        print("conveyor-load: starting Redis, PostgreSQL, a coordinator and \(agents) agents…")
        let stack = try await LoadStack.start(conveyor: binary, agents: agents, agentConcurrency: agentConcurrency, redisURL: nil, environment: [:])
        let interrupt = InterruptHandler { await stack.shutdown(keep: false) }
        let passed: Bool
        do {
            passed = try await measure(stack)
        } catch {
            interrupt.cancel()
            await stack.shutdown(keep: keep)
            throw error
        }
        interrupt.cancel()
        await stack.shutdown(keep: keep)
        if keep { print("kept \(stack.directory)") }
        if !passed { throw ExitCode(1) }
    }

    private func measure(_ stack: LoadStack) async throws -> Bool {
        let load = WorkflowLoad(
            baseURL: stack.baseURL, nodes: nodes, rate: try rate.map(LoadShape.rate), duration: .seconds(duration), concurrency: concurrency)
        let plain = try tasks.map { rate in
            LoadRun(plan: LoadPlan(
                baseURL: stack.baseURL, token: LoadStack.token, rate: try LoadShape.rate(rate), duration: .seconds(duration), count: nil,
                batch: 1, concurrency: 64, mix: try LoadShape.mix("noop=100"), progress: false))
        }
        let started = ContinuousClock.now
        let startedMillis = WallClock.nowMillis()
        async let plainResult = plain?.run()
        await load.run()
        let plainRun = await plainResult
        let submitted = ContinuousClock.now - started
        print("submitted \(load.accepted.count) workflows (\(load.accepted.count * nodes) nodes) in \(submitted); waiting for them to end…")
        let ids = load.accepted.map(\.id)
        let deadline = ContinuousClock.now + .seconds(settle)
        while ContinuousClock.now < deadline, try await WorkflowCheck.running(url: stack.postgres.url, ids: ids) > 0 {
            try await Task.sleep(for: .seconds(1))
        }
        let check = try await WorkflowCheck.make(
            url: stack.postgres.url, accepted: load.accepted, dependencies: load.dependencies, journalPaths: stack.journalPaths)
        let timing = try await WorkflowTiming.read(url: stack.postgres.url, ids: ids, startedAtMillis: startedMillis)
        var outcome: Outcome?
        if let plainRun {
            outcome = try await OutcomeCheck.check(
                postgresURL: stack.postgres.url, ids: plainRun.acceptedIDs, startedAtMillis: plainRun.startedAtMillis,
                settle: .seconds(settle), journalPaths: stack.journalPaths, progress: false)
        }
        let loadText = rate.map { "open loop at \($0)" } ?? "closed loop, \(concurrency) workflows in flight"
        print("""
            ── Conveyor workflows ──
            load:        \(loadText) for \(duration) s; \(nodes) nodes each (a root, \(nodes - 2) parallel, a join)\(tasks.map { "; plain noop tasks at \($0)" } ?? "")
            accepted:    \(check.accepted) workflows (\(check.nodes) nodes); never answered \(load.unanswered), rejected \(load.rejected.count)
            statuses:    \(check.statuses.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            LOST:        \(check.unfinished) still running after \(settle) s; wrong status \(check.wrong)
            order:       \(check.startedEarly) nodes started before their dependencies succeeded; \(check.joinsNotQueuedOnce) joins not queued exactly once
            throughput:  \(String(format: "%.0f", timing.nodesPerSecond)) workflow nodes/s (\(timing.nodes) nodes ended from the first submission to the last workflow's end, \(String(format: "%.1f", timing.spanSeconds)) s)
            duration:    workflow submission to end p50 \(String(format: "%.0f", timing.p50Millis)) ms, p99 \(String(format: "%.0f", timing.p99Millis)) ms, max \(String(format: "%.0f", timing.maxMillis)) ms
            """)
        for rejection in load.rejected.prefix(5) { print("  rejected: \(rejection)") }
        if let plainRun, let outcome {
            print("plain tasks: \(plainRun.acceptedIDs.count) accepted, \(outcome.total.succeeded) succeeded, \(outcome.total.failed) failed, \(outcome.lost) lost; end-to-end p50 \(String(format: "%.2f", outcome.total.endToEnd.milliseconds(at: 50))) ms, p99 \(String(format: "%.2f", outcome.total.endToEnd.milliseconds(at: 99))) ms")
        }
        let passed = check.passed && check.accepted > 0 && load.unanswered == 0 && load.rejected.isEmpty && (outcome.map { $0.lost == 0 } ?? true)
        print("result:      \(passed ? "PASS" : "FAIL")")
        return passed
    }
}

/// Submits workflows of one shape: `root` → `p0` … `p<n-3>` → `join`, all noop.
final class WorkflowLoad: Sendable {
    let baseURL: String
    let nodes: Int
    let rate: Double?
    let duration: Duration
    let concurrency: Int
    let dependencies: [String: [String]]
    private let body: String
    private let state = Mutex<(accepted: [AcceptedWorkflow], unanswered: Int, rejected: [String])>(([], 0, []))
    private let next = Atomic<Int>(0)

    init(baseURL: String, nodes: Int, rate: Double?, duration: Duration, concurrency: Int) {
        self.baseURL = baseURL
        self.nodes = nodes
        self.rate = rate
        self.duration = duration
        self.concurrency = concurrency
        let parallel = (0..<(nodes - 2)).map { "p\($0)" }
        var dependencies: [String: [String]] = ["root": [], "join": parallel]
        for key in parallel { dependencies[key] = ["root"] }
        self.dependencies = dependencies
        var elements = ["{\"key\":\"root\",\"type\":\"noop\"}"]
        elements += parallel.map { "{\"key\":\"\($0)\",\"type\":\"noop\",\"depends_on\":[\"root\"]}" }
        elements.append("{\"key\":\"join\",\"type\":\"noop\",\"depends_on\":[" + parallel.map { "\"\($0)\"" }.joined(separator: ",") + "]}")
        self.body = "{\"name\":\"load\",\"nodes\":[" + elements.joined(separator: ",") + "]}"
    }

    var accepted: [AcceptedWorkflow] { state.withLock { $0.accepted } }
    var unanswered: Int { state.withLock { $0.unanswered } }
    var rejected: [String] { state.withLock { $0.rejected } }

    func run() async {
        let start = ContinuousClock.now
        let end = start + duration
        await withTaskGroup(of: Void.self) { group in
            if let rate {
                // Open loop: one submission per interval, whatever the answers take.
                let interval = Duration.seconds(1 / rate)
                var index = 0
                while start + interval * index < end {
                    let due = start + interval * index
                    try? await Task.sleep(until: due)
                    group.addTask { await self.send() }
                    index += 1
                }
            } else {
                for _ in 0..<concurrency {
                    group.addTask {
                        while ContinuousClock.now < end { await self.send() }
                    }
                }
            }
        }
    }

    private func send() async {
        var request = HTTPClientRequest(url: baseURL + "/v1/workflows")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(LoadStack.token)")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            let text = String(buffer: try await response.body.collect(upTo: 16 << 20))
            guard response.status.code == 201, let json = try? JSONValue.parse(text), let id = json["id"]?.intValue,
                case .object(let members)? = json["nodes"]
            else {
                state.withLock { $0.rejected.append("\(response.status.code) \(text.prefix(200))") }
                return
            }
            state.withLock { $0.accepted.append(AcceptedWorkflow(id: id, nodes: members.compactMapValues(\.intValue))) }
        } catch {
            state.withLock { $0.unanswered += 1 }
        }
    }
}

/// Node throughput and workflow durations, from the `workflows` rows.
struct WorkflowTiming: Sendable {
    var nodes = 0
    var spanSeconds = 0.0
    var p50Millis = 0.0
    var p99Millis = 0.0
    var maxMillis = 0.0

    var nodesPerSecond: Double { spanSeconds > 0 ? Double(nodes) / spanSeconds : 0 }

    static func read(url: String, ids: [Int64], startedAtMillis: Int64) async throws -> WorkflowTiming {
        guard !ids.isEmpty else { return WorkflowTiming() }
        let connection = PostgresConnection(url: url, name: "load-workflows", logger: Logger(label: "conveyor.load", factory: { _ in SwiftLogNoOpLogHandler() }))
        defer { connection.close() }
        let row = try await connection.withSession { session in
            try session.query("""
                SELECT coalesce(sum(node_count) FILTER (WHERE finished_at IS NOT NULL), 0),
                       (extract(epoch FROM max(finished_at)) * 1000)::bigint,
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at) * 1000),
                       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at) * 1000),
                       max(extract(epoch FROM finished_at - created_at) * 1000)
                FROM workflows WHERE id = ANY($1::bigint[])
                """, [PostgresArrayLiteral.integers(ids)]).rows.first ?? []
        }
        var timing = WorkflowTiming()
        timing.nodes = row.first.flatMap { $0.flatMap { Int($0) } } ?? 0
        if let last = row.count > 1 ? row[1].flatMap({ Int64($0) }) : nil { timing.spanSeconds = Double(last - startedAtMillis) / 1000 }
        timing.p50Millis = row.count > 2 ? row[2].flatMap { Double($0) } ?? 0 : 0
        timing.p99Millis = row.count > 3 ? row[3].flatMap { Double($0) } ?? 0 : 0
        timing.maxMillis = row.count > 4 ? row[4].flatMap { Double($0) } ?? 0 : 0
        return timing
    }
}
