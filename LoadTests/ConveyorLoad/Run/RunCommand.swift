import ArgumentParser
import Foundation

/// `conveyor-load run`: load against a coordinator (one it starts itself with `--embedded`, or a running
/// one with `--url`), open loop at a fixed rate or closed loop at the ceiling. Reports throughput,
/// enqueue and end-to-end latency, what became of every accepted task, and each process's CPU and memory.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Submit tasks at a fixed rate (open loop) or as fast as the coordinator answers (--max), and report.",
        discussion: """
            Presets (--preset; any flag given as well overrides the preset's):
              seed        1,000 tasks/min for 60 s, 10 agents, --slo p95=200ms (the seed's own load test)
              max         closed loop through /v1/tasks/batch: 500 tasks per request, 8 in flight, 60 s,
                          2 agents of concurrency 1000
              max-single  closed loop through single POSTs, 64 in flight, 60 s, 2 agents of concurrency 1000
              soak        60,000 tasks/min for 60 min, mix noop=86,sleep:5ms=5,fail:1x=7,fail:9x=2,
                          every 100th task cancelled, an agent restarted every minute,
                          retention 2m: reports the growth of Redis, PostgreSQL and each process
              overload    open loop at 2,600,000 tasks/min (twice the batch ceiling) in batches of 500:
                          the coordinator sheds what it cannot take; reports the shed requests and the
                          accepted requests' latency; passes when nothing accepted is lost
            Presets run --embedded unless --url is given.
            Exit status: 0 when every accepted task finished and every --slo was met; 1 otherwise.
            """)

    @Option(help: "A named load: \(LoadPreset.names.joined(separator: ", ")).") var preset: String?
    @Flag(help: "The load is meant to overload the coordinator: shed requests (429/503 + Retry-After) are reported, not failures.") var expectShedding = false
    @Flag(help: "Start the whole stack here (Redis, PostgreSQL, a coordinator and --agents agents, each its own process).") var embedded = false
    @Option(help: "Coordinator URL of a running stack (default: CONVEYOR_URL, or http://127.0.0.1:8080).") var url: String?
    @Option(help: "Bearer token (default: CONVEYOR_API_TOKEN).") var token: String?
    @Option(help: "PostgreSQL URL of a running stack: check every accepted task and measure end-to-end latency.") var postgresURL: String?
    @Option(help: "Agents to start with --embedded (default 2).") var agents: Int?
    @Option(help: "With --embedded: use this running Redis instead of starting one.") var redisURL: String?
    @Option(help: "With --embedded: start a Redis Cluster of this many primaries (a replica each) instead of one Redis.") var redisCluster: Int?
    @Option(help: "Concurrency of each embedded agent (default 64; 1000 in the max presets).") var agentConcurrency: Int?
    @Option(help: "Arrival rate, e.g. 1000/min or 20000/s (open loop: latency counts from each request's intended send time).") var rate: String?
    @Flag(help: "Closed loop: send as fast as the coordinator answers, to find the ceiling.") var max = false
    @Option(help: "Seconds to submit for (default 60).") var duration: Int?
    @Option(help: "Tasks to submit (ends the load early if reached before --duration).") var count: Int?
    @Option(help: "Tasks per request: 1 uses POST /v1/tasks, more uses /v1/tasks/batch (default 1).") var batch: Int?
    @Option(help: "Concurrent requests (default 64).") var concurrency: Int?
    @Option(help: "Task mix, e.g. noop=90,sleep:5ms=10 (default noop=100).") var mix: String?
    @Option(help: "Latency objectives, e.g. p95=200ms,p99.9=1s,e2e-p99=100ms: the run fails if one is breached.") var slo: String?
    @Option(help: "Seconds to wait after the load for accepted tasks to finish.") var settle = 120
    @Option(help: "Write the report as JSON to this file.") var json: String?
    @Option(help: "Draw throughput and latency over time to this SVG file.") var chart: String?
    @Option(help: "The conveyor binary for --embedded (default: next to conveyor-load).") var conveyor: String?
    @Option(parsing: .singleValue, help: "An environment variable for the embedded coordinator and agents, NAME=VALUE (repeatable).") var env: [String] = []
    @Flag(help: "Keep the embedded stack's folder (logs, journal, data).") var keep = false
    @Flag(help: "No progress line every second.") var quiet = false

    /// The settings after the preset is applied under the flags.
    struct Resolved {
        var embedded: Bool
        var rate: Double?
        var rateText: String?
        var duration: Int?
        var count: Int?
        var agents: Int
        var agentConcurrency: Int
        var batch: Int
        var concurrency: Int
        var mixText: String
        var mix: [MixEntry]
        var objectives: [ServiceLevelObjective]
        var churn: SoakChurn.Plan?
        var environment: [String: String]
        var sheddingExpected: Bool
    }

    func resolve() throws -> Resolved {
        var base = LoadPreset(duration: 60, agents: 2)
        if let preset {
            guard let named = LoadPreset.named(preset) else {
                throw ValidationError("unknown preset '\(preset)': use one of \(LoadPreset.names.joined(separator: ", "))")
            }
            base = named
        }
        let closedLoop = max || (rate == nil && base.closedLoop)
        let rateText = closedLoop ? nil : (rate ?? base.rate)
        guard closedLoop || rateText != nil else { throw ValidationError("give --rate, --max or a --preset") }
        guard !(max && rate != nil) else { throw ValidationError("give either --rate or --max, not both") }
        let resolved: Resolved
        do {
            let mixText = mix ?? base.mix
            resolved = Resolved(
                embedded: embedded || (preset != nil && url == nil), rate: try rateText.map(LoadShape.rate), rateText: rateText,
                duration: count != nil && duration == nil ? nil : (duration ?? base.duration), count: count, agents: agents ?? base.agents, agentConcurrency: agentConcurrency ?? base.agentConcurrency,
                batch: batch ?? base.batch, concurrency: concurrency ?? base.concurrency, mixText: mixText, mix: try LoadShape.mix(mixText),
                objectives: try (slo ?? base.slo).map(LoadShape.objectives) ?? [], churn: base.churn, environment: base.environment,
                sheddingExpected: base.sheddingExpected || expectShedding)
        } catch {
            throw ValidationError("\(error)")
        }
        guard resolved.duration.map({ $0 > 0 }) ?? true, resolved.count.map({ $0 > 0 }) ?? true else {
            throw ValidationError("--duration and --count must be positive")
        }
        guard (1...1000).contains(resolved.batch) else { throw ValidationError("--batch must be 1–1000") }
        guard resolved.concurrency >= 1, (1...64).contains(resolved.agents), resolved.agentConcurrency >= 1 else {
            throw ValidationError("--concurrency and --agent-concurrency must be at least 1, --agents 1–64")
        }
        guard !(resolved.embedded && url != nil) else { throw ValidationError("give either --embedded or --url, not both") }
        guard resolved.embedded || redisURL == nil else { throw ValidationError("--redis-url goes with --embedded") }
        guard resolved.embedded || redisCluster == nil else { throw ValidationError("--redis-cluster goes with --embedded") }
        guard redisURL == nil || redisCluster == nil else { throw ValidationError("give either --redis-url or --redis-cluster, not both") }
        if let redisCluster, !(3...9).contains(redisCluster) { throw ValidationError("--redis-cluster must be 3–9 primaries (a Redis Cluster needs at least 3)") }
        for item in env where !item.contains("=") { throw ValidationError("--env '\(item)' must look like NAME=VALUE") }
        return resolved
    }

    func validate() throws { _ = try resolve() }

    func run() async throws {
        let settings = try resolve()
        var stack: LoadStack?
        if settings.embedded {
            let binary = conveyor ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("conveyor").path
            guard FileManager.default.isExecutableFile(atPath: binary) else {
                throw ValidationError("no conveyor binary at \(binary): build it (swift build -c release) or pass --conveyor")
            }
            var environment = settings.environment
            for item in env {
                let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
                environment[parts[0]] = parts.count > 1 ? parts[1] : ""
            }
            print("conveyor-load: starting Redis, PostgreSQL, a coordinator and \(settings.agents) agents…")
            stack = try await LoadStack.start(conveyor: binary, agents: settings.agents, agentConcurrency: settings.agentConcurrency, redisURL: redisURL, redisCluster: redisCluster, environment: environment)
        }
        // Ctrl-C or SIGTERM: the stack's processes run in process groups of their own, so stop them here.
        let interrupt = stack.map { stack in InterruptHandler { await stack.shutdown(keep: false) } }
        let report: LoadReport
        do {
            report = try await measure(settings, stack: stack)
        } catch {
            interrupt?.cancel()
            await stack?.shutdown(keep: keep)
            throw error
        }
        interrupt?.cancel()
        await stack?.shutdown(keep: keep)
        if keep, let stack { print("kept \(stack.directory)") }
        print(report.table)
        if let json {
            try report.json().write(to: URL(fileURLWithPath: json))
            print("report written to \(json)")
        }
        if let chart {
            try LoadChart.svg(report).write(toFile: chart, atomically: true, encoding: .utf8)
            print("chart written to \(chart)")
        }
        if !report.passed { throw ExitCode(1) }
    }

    private func measure(_ settings: Resolved, stack: LoadStack?) async throws -> LoadReport {
        let baseURL = stack?.baseURL ?? url ?? ProcessInfo.processInfo.environment["CONVEYOR_URL"] ?? "http://127.0.0.1:8080"
        let plan = LoadPlan(
            baseURL: baseURL, token: stack == nil ? (token ?? ProcessInfo.processInfo.environment["CONVEYOR_API_TOKEN"]) : LoadStack.token, rate: settings.rate,
            duration: settings.duration.map { .seconds($0) }, count: settings.count, batch: settings.batch,
            concurrency: settings.concurrency, mix: settings.mix, progress: !quiet, cancelEvery: settings.churn?.cancelEvery)
        let sampler = stack.map { stack in ProcessSampler(processes: { stack.watched }) }
        // The soak: agent restarts, and the growth of memory and storage.
        let churning = settings.churn != nil ? stack : nil
        let growth = churning.map { GrowthSampler(stack: $0) }
        let restarts = Task<[ClosedRange<Int64>], Never> {
            guard let churning, let churn = settings.churn else { return [] }
            return await SoakChurn.restartAgents(of: churning, plan: churn, progress: !quiet)
        }
        // Open loop: what Redis and PostgreSQL did in the background, for the slow seconds' causes.
        let activity = settings.rate != nil ? stack.map { BackendActivitySampler(stack: $0) } : nil
        let probe = stack == nil ? CoordinatorProcessProbe(baseURL: baseURL) : nil
        let watch = Task {
            await withTaskGroup(of: Void.self) { group in
                if let sampler { group.addTask { await sampler.run() } }
                if let probe { group.addTask { await probe.run() } }
                if let growth { group.addTask { await growth.run() } }
                if let activity { group.addTask { await activity.run() } }
            }
        }
        let result = await LoadRun(plan: plan).run()
        restarts.cancel()
        let agentRestarts = await restarts.value
        watch.cancel()
        await watch.value
        sampler?.sample()
        await probe?.sample()

        var outcome: Outcome?
        if let postgres = stack?.postgres.url ?? postgresURL {
            outcome = try await OutcomeCheck.check(
                postgresURL: postgres, ids: result.acceptedIDs, startedAtMillis: result.startedAtMillis, settle: .seconds(settle),
                journalPaths: stack?.journalPaths, progress: !quiet)
        }
        let load = settings.rateText.map { "open loop at \($0)" } ?? "closed loop, \(settings.concurrency) requests in flight"
        let shape = settings.batch == 1 ? "single POSTs" : "batches of \(settings.batch)"
        let target = stack.map { _ in
            "embedded: 1 coordinator, \(settings.agents) agents" + (redisCluster.map { ", a Redis Cluster of \($0) primaries" } ?? "")
        } ?? baseURL
        return LoadReport(
            mode: "\(load), \(shape), \(target)", mix: settings.mixText, load: result, outcome: outcome,
            processes: (sampler?.usage ?? []) + (probe?.usage ?? []), objectives: settings.objectives,
            // Warm-up: the first half, by when retention has started dropping generations.
            growth: growth?.growth(after: result.elapsed.seconds / 2) ?? [], agentRestarts: agentRestarts,
            sheddingExpected: settings.sheddingExpected, openLoop: settings.rate != nil, backendActivity: activity?.activity ?? [])
    }
}
