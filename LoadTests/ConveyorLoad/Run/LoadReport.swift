import ConveyorCore
import Foundation

/// The outcome of `conveyor-load run`: the final table, `--json`, and whether the run passed.
struct LoadReport: Sendable, Codable {
    struct Percentiles: Sendable, Codable {
        var p50: Double
        var p95: Double
        var p99: Double
        var p999: Double
        var max: Double

        init(_ histogram: LatencyHistogram) {
            p50 = histogram.milliseconds(at: 50)
            p95 = histogram.milliseconds(at: 95)
            p99 = histogram.milliseconds(at: 99)
            p999 = histogram.milliseconds(at: 99.9)
            max = histogram.maxMilliseconds
        }
    }

    /// One task type of a mix: what it kept beside the others.
    struct TypeLine: Sendable, Codable {
        var type: String
        var succeeded: Int
        var failed: Int
        /// Succeeded tasks of this type per second, from the first submission to its last finish.
        var endToEndPerSecond: Double
        var endToEndMilliseconds: Percentiles
    }

    struct Verdict: Sendable, Codable {
        var objective: String
        var measuredMilliseconds: Double
        var met: Bool
    }

    var mode: String
    var mix: String
    var loadSeconds: Double
    var submitted: Int
    var accepted: Int
    var rejected: Int
    var errors: [String: Int]
    /// Requests (and their tasks) the coordinator shed: 429 or 503 with `Retry-After` and the code
    /// `overloaded`. Not rejections: the client was told to come back.
    var shedRequests: Int
    var shedTasks: Int
    /// Whether shedding was expected (the `overload` preset): otherwise a shed request fails the run.
    var sheddingExpected: Bool
    /// Latency of the accepted requests alone (shed and failed ones left out).
    var acceptedEnqueueMilliseconds: Percentiles
    var succeeded: Int?
    var failed: Int?
    var lost: Int?
    var expired: Int?
    var duplicates: Int?
    var cancelled: Int
    var cancelTooLate: Int
    /// Growth after the warm-up of memory and storage (the soak); empty otherwise.
    var growth: [GrowthSampler.Growth]
    var agentRestarts: Int
    /// Open loop only (closed-loop latency is queueing by design): the seconds whose enqueue P99 passed
    /// 50 ms, each with what the run saw happen then.
    var slowSeconds: SlowSeconds?
    /// Accepted tasks per second over the load.
    var acceptedPerSecond: Double
    /// Succeeded tasks per second, from the first submission to the last task recorded finished.
    var endToEndPerSecond: Double?
    /// Milliseconds, per request (failed ones included), from its intended send time.
    var enqueueMilliseconds: Percentiles
    /// Milliseconds, per task, from PostgreSQL's `created_at` to `finished_at`.
    var endToEndMilliseconds: Percentiles?
    /// Per task type, when the run had more than one.
    var types: [TypeLine]
    var processes: [ProcessUsage]
    /// CPU per task summed over the broker's processes (coordinator, agents, Redis, PostgreSQL; not the
    /// load generator), in microseconds: the efficiency figure of `docs/performance.md`. Nil without
    /// watched processes or without finished tasks to divide by.
    var cpuMicrosecondsPerTask: Double?
    /// Tasks recorded finished during the load, per second: what the CPU per task divides by.
    var finishedDuringLoadPerSecond: Double?
    var objectives: [Verdict]
    var timeline: [LoadRun.Second]
    var finishedPerSecond: [Int]
    var endToEndP99PerSecond: [Double]
    var passed: Bool

    init(
        mode: String, mix: String, load: LoadRun.Result, outcome: Outcome?, processes: [ProcessUsage], objectives: [ServiceLevelObjective],
        growth: [GrowthSampler.Growth] = [], agentRestarts: [ClosedRange<Int64>] = [], sheddingExpected: Bool = false,
        openLoop: Bool = false, backendActivity: [(Int64, SlowSeconds.Cause)] = []
    ) {
        shedRequests = load.shedRequests
        shedTasks = load.shedTasks
        self.sheddingExpected = sheddingExpected
        acceptedEnqueueMilliseconds = Percentiles(load.acceptedEnqueue)
        self.growth = growth
        self.agentRestarts = agentRestarts.count
        slowSeconds = openLoop
            ? SlowSeconds(timeline: load.timeline, restarts: agentRestarts, activity: backendActivity, startedAtMillis: load.startedAtMillis) : nil
        cancelled = load.cancelled
        cancelTooLate = load.cancelTooLate
        self.mode = mode
        self.mix = mix
        loadSeconds = load.elapsed.seconds
        submitted = load.submittedTasks
        accepted = load.acceptedIDs.count
        rejected = load.failedTasks
        errors = load.errors
        acceptedPerSecond = Double(accepted) / max(loadSeconds, 0.001)
        enqueueMilliseconds = Percentiles(load.enqueue)
        succeeded = outcome?.total.succeeded
        failed = outcome?.total.failed
        lost = outcome?.lost
        expired = outcome?.expired
        duplicates = outcome?.duplicates
        if let outcome {
            endToEndMilliseconds = Percentiles(outcome.total.endToEnd)
            endToEndPerSecond = Double(outcome.total.succeeded) / max(outcome.total.lastFinishedSecond, loadSeconds, 0.001)
        }
        let seconds = loadSeconds
        let byType = outcome?.byType ?? [:]
        types = byType.count < 2 ? [] : byType.sorted { $0.key < $1.key }.map { type, tally in
            TypeLine(
                type: type, succeeded: tally.succeeded, failed: tally.failed,
                endToEndPerSecond: Double(tally.succeeded) / max(tally.lastFinishedSecond, seconds, 0.001), endToEndMilliseconds: Percentiles(tally.endToEnd))
        }
        // CPU is sampled over the load only, so it divides by the tasks that finished in that window
        // (not those still draining afterwards).
        // The last, partial second counts by the part of it inside the load.
        let perSecond = outcome?.finishedPerSecond ?? []
        let wholeSeconds = Int(loadSeconds)
        var finishedDuringLoad = Double(perSecond.prefix(wholeSeconds).reduce(0, +))
        if wholeSeconds < perSecond.count { finishedDuringLoad += (loadSeconds - Double(wholeSeconds)) * Double(perSecond[wholeSeconds]) }
        // Tasks retention removed are not among the finished rows: then no figure rather than a wrong one.
        let finishingRate = finishedDuringLoad > 0 && (outcome?.expired ?? 0) == 0 ? finishedDuringLoad / max(loadSeconds, 0.001) : nil
        finishedDuringLoadPerSecond = finishingRate
        self.processes = processes.map { process in
            var process = process
            process.cpuMicrosecondsPerTask = finishingRate.map { process.cpuPercent / 100 / $0 * 1e6 }
            return process
        }
        // Only the embedded stack watches every broker process (and the load generator itself); against
        // `--url` the coordinator alone is seen, which is no broker's sum.
        let embedded = processes.contains { $0.name == LoadReport.loadGeneratorName }
        let broker = self.processes.filter { $0.name != LoadReport.loadGeneratorName }
        cpuMicrosecondsPerTask = !embedded || broker.isEmpty ? nil : finishingRate.map { rate in broker.reduce(0) { $0 + $1.cpuPercent } / 100 / rate * 1e6 }
        timeline = load.timeline
        finishedPerSecond = outcome?.finishedPerSecond ?? []
        endToEndP99PerSecond = outcome?.endToEndP99PerSecond ?? []
        self.objectives = objectives.map { objective in
            // Under expected shedding an enqueue objective is about the requests that were accepted.
            let enqueue = sheddingExpected ? load.acceptedEnqueue : load.enqueue
            let histogram = objective.measure == .enqueue ? enqueue : (outcome?.total.endToEnd ?? LatencyHistogram())
            let measured = histogram.milliseconds(at: objective.percentile)
            return Verdict(objective: objective.description, measuredMilliseconds: measured, met: histogram.count > 0 && measured <= objective.limitMilliseconds)
        }
        passed = (outcome?.lost ?? 0) == 0 && rejected == 0 && (sheddingExpected || shedRequests == 0) && self.objectives.allSatisfy(\.met) && accepted > 0 && growth.allSatisfy(\.flat)
    }

    var table: String {
        func number(_ value: Int?) -> String { value.map { $0.formatted(.number) } ?? "n/a" }
        func milliseconds(_ value: Double) -> String { String(format: value < 10 ? "%.2f ms" : "%.1f ms", value) }
        func row(_ name: String, _ value: String) -> String { name.padding(toLength: 26, withPad: " ", startingAt: 0) + value }
        var lines = ["", "── conveyor-load run ──", row("mode", mode), row("mix", mix)]
        lines.append(row("load", String(format: "%.1f s", loadSeconds)))
        lines.append(row("submitted", number(submitted)))
        lines.append(row("accepted", number(accepted)))
        lines.append(row("rejected", number(rejected) + (errors.isEmpty ? "" : "  (" + errors.sorted { $0.value > $1.value }.prefix(4).map { "\($0.key): \($0.value) requests" }.joined(separator: ", ") + ")")))
        if shedRequests > 0 || sheddingExpected {
            lines.append(row("shed", "\(number(shedTasks)) tasks in \(number(shedRequests)) requests (429/503 + Retry-After: overloaded)"
                + (sheddingExpected ? "" : "  ← not expected")))
        }
        lines.append(row("succeeded", number(succeeded)))
        lines.append(row("failed", number(failed)))
        lines.append(row("lost", lost.map { $0 == 0 ? "0" : "\($0)  ← LOST" } ?? "n/a (no PostgreSQL to check)"))
        if let expired, expired > 0 { lines.append(row("expired", "\(number(expired)) (finished, then removed by retention)")) }
        if cancelled + cancelTooLate > 0 { lines.append(row("cancels", "\(number(cancelled)) cancelled, \(number(cancelTooLate)) too late (already finished)")) }
        if agentRestarts > 0 { lines.append(row("agent restarts", number(agentRestarts))) }
        lines.append(row("duplicates", duplicates.map(String.init) ?? "n/a (needs the agents' execution journal: --embedded)"))
        lines.append(row("throughput", String(format: "%.0f tasks/s accepted (%.0f per minute)", acceptedPerSecond, acceptedPerSecond * 60)))
        if let endToEndPerSecond {
            lines.append(row("", String(format: "%.0f tasks/s succeeded end to end (%.0f per minute)", endToEndPerSecond, endToEndPerSecond * 60)))
        }
        let enqueue = enqueueMilliseconds
        lines.append(row("enqueue latency", "P50 \(milliseconds(enqueue.p50))  P95 \(milliseconds(enqueue.p95))  P99 \(milliseconds(enqueue.p99))  P99.9 \(milliseconds(enqueue.p999))  max \(milliseconds(enqueue.max))"))
        if shedRequests > 0 {
            let accepted = acceptedEnqueueMilliseconds
            lines.append(row("  accepted requests", "P50 \(milliseconds(accepted.p50))  P95 \(milliseconds(accepted.p95))  P99 \(milliseconds(accepted.p99))  P99.9 \(milliseconds(accepted.p999))  max \(milliseconds(accepted.max))"))
        }
        if let slowSeconds { lines.append(row("slow seconds", slowSeconds.summary)) }
        if let endToEnd = endToEndMilliseconds {
            lines.append(row("end-to-end latency", "P50 \(milliseconds(endToEnd.p50))  P95 \(milliseconds(endToEnd.p95))  P99 \(milliseconds(endToEnd.p99))  max \(milliseconds(endToEnd.max))"))
        }
        if !types.isEmpty {
            lines.append(row("by type", "succeeded, end to end per second, end-to-end P50 / P99"))
            for line in types {
                let rate = String(format: "%.0f/s", line.endToEndPerSecond)
                let latency = line.endToEndMilliseconds
                lines.append(row("  " + line.type, "\(number(line.succeeded)) (\(number(line.failed)) failed)  \(rate)  P50 \(milliseconds(latency.p50))  P99 \(milliseconds(latency.p99))"))
            }
        }
        if !processes.isEmpty {
            lines.append(row("processes", "CPU (% of one core, average)   per task   memory now / peak"))
            func perTask(_ value: Double?) -> String { value.map { String(format: "%6.1f", $0) + " µs" } ?? "     n/a" }
            for process in processes {
                lines.append(row(
                    "  " + process.name,
                    String(format: "%6.1f %%", process.cpuPercent) + String(repeating: " ", count: 24) + perTask(process.cpuMicrosecondsPerTask)
                        + String(format: "   %6.1f MiB / %.1f MiB", process.residentMiB, process.peakResidentMiB)))
            }
            if let cpuMicrosecondsPerTask, let finishedDuringLoadPerSecond {
                lines.append(row(
                    "CPU per task",
                    String(format: "%.1f", cpuMicrosecondsPerTask) + " µs summed over the broker's processes (not conveyor-load), at "
                        + String(format: "%.0f", finishedDuringLoadPerSecond) + " tasks/s finished during the load"))
            }
        }
        if !growth.isEmpty {
            lines.append(row("growth after warm-up", "first → last MiB, least-squares slope"))
            for series in growth {
                lines.append(row("  " + series.name, String(format: "%8.1f → %8.1f MiB   %+7.2f MiB/min   ", series.firstMiB, series.lastMiB, series.slopeMiBPerMinute) + (series.flat ? "flat" : "GROWING")))
            }
        }
        for verdict in objectives {
            lines.append(row("SLO " + verdict.objective, "\(milliseconds(verdict.measuredMilliseconds)): \(verdict.met ? "met" : "BREACHED")"))
        }
        lines.append(row("result", passed ? "PASS" : "FAIL"))
        return lines.joined(separator: "\n")
    }

    /// The load generator's own entry among the processes: left out of the broker's CPU per task.
    static let loadGeneratorName = "conveyor-load"

    func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return try encoder.encode(self)
    }
}
