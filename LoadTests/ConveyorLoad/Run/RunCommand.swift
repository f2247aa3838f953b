import ArgumentParser
import Foundation

/// `conveyor-load run`: load against a running coordinator, open loop at a fixed rate or closed loop
/// at the ceiling; reports throughput and enqueue latency percentiles, and, given the database, checks
/// that every accepted task finished.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Submit tasks to a coordinator at a fixed rate (open loop) or as fast as it answers (--max).")

    @Option(help: "Coordinator URL.") var url = ProcessInfo.processInfo.environment["CONVEYOR_URL"] ?? "http://127.0.0.1:8080"
    @Option(help: "Bearer token (default: CONVEYOR_API_TOKEN).") var token = ProcessInfo.processInfo.environment["CONVEYOR_API_TOKEN"]
    @Option(help: "Arrival rate, e.g. 1000/min or 20000/s (open loop: latency counts from each request's intended send time).") var rate: String?
    @Flag(help: "Closed loop: send as fast as the coordinator answers, to find the ceiling.") var max = false
    @Option(help: "Seconds to submit for.") var duration = 60
    @Option(help: "Tasks per request: 1 uses POST /v1/tasks, more uses /v1/tasks/batch.") var batch = 1
    @Option(help: "Concurrent senders.") var concurrency = 64
    @Option(help: "Task mix, e.g. noop=90,sleep=10.") var mix = "noop=100"
    @Option(help: "PostgreSQL URL: after the run, wait until every accepted task is terminal and report the lost ones.") var postgresURL: String?
    @Option(help: "Seconds to wait for accepted tasks to finish (with --postgres-url).") var settle = 120

    func validate() throws {
        guard (rate != nil) != max else { throw ValidationError("give either --rate or --max") }
        guard duration > 0, batch >= 1, batch <= 1000, concurrency >= 1 else {
            throw ValidationError("--duration must be positive, --batch 1–1000, --concurrency at least 1")
        }
    }

    func run() async throws {
        let tasksPerSecond: Double?
        let shares: [(type: String, share: Double)]
        do {
            tasksPerSecond = try rate.map(LoadShape.rate)
            shares = try LoadShape.mix(mix)
        } catch {
            throw ValidationError("\(error)")
        }
        let load = LoadRun(
            baseURL: url, token: token, rate: tasksPerSecond, duration: .seconds(duration), batch: batch,
            concurrency: concurrency, mix: shares)
        let result = await load.run()
        let seconds = Double(result.elapsed.components.seconds) + Double(result.elapsed.components.attoseconds) / 1e18
        let latencies = result.latencies
        print("""
            ── conveyor-load run ──
            mode:      \(max ? "closed loop, \(concurrency) senders" : "open loop at \(rate!)"), \(batch == 1 ? "single POSTs" : "batches of \(batch)"), mix \(mix)
            accepted:  \(result.acceptedIDs.count) tasks in \(String(format: "%.1f", seconds)) s = \(String(format: "%.0f", Double(result.acceptedIDs.count) / seconds)) tasks/s (\(String(format: "%.0f", Double(result.acceptedIDs.count) / seconds * 60)) per minute); failed requests \(result.failedRequests)
            enqueue:   p50 \(String(format: "%.2f", LoadShape.percentile(latencies, 0.5))) ms, p95 \(String(format: "%.2f", LoadShape.percentile(latencies, 0.95))) ms, p99 \(String(format: "%.2f", LoadShape.percentile(latencies, 0.99))) ms, max \(String(format: "%.2f", latencies.last ?? 0)) ms (per request, from its intended send time)
            """)
        if let postgresURL {
            let deadline = ContinuousClock.now + .seconds(settle)
            var terminal = 0
            var counts: [String: Int] = [:]
            while ContinuousClock.now < deadline {
                counts = (try? await TaskCensus.statusCounts(url: postgresURL, ids: result.acceptedIDs)) ?? [:]
                terminal = ["succeeded", "failed", "dead", "cancelled"].reduce(0) { $0 + (counts[$1] ?? 0) }
                if terminal == result.acceptedIDs.count { break }
                try await Task.sleep(for: .milliseconds(500))
            }
            let lost = result.acceptedIDs.count - terminal
            print("finished:  \(terminal) of \(result.acceptedIDs.count) terminal (\(counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))); LOST \(lost)")
            if lost > 0 { throw ExitCode(1) }
        }
        if result.failedRequests > 0 { throw ExitCode(1) }
    }
}
