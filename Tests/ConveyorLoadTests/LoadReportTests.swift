@testable import conveyor_load
import Foundation
import Testing

@Suite("Load report")
struct LoadReportTests {
    private static func result(accepted: Int, shedRequests: Int = 0) -> LoadRun.Result {
        LoadRun.Result(
            acceptedIDs: Array(1...Int64(accepted)), submittedTasks: accepted + shedRequests, failedTasks: 0, errors: [:],
            shedRequests: shedRequests, shedTasks: shedRequests, enqueue: LatencyHistogram(), acceptedEnqueue: LatencyHistogram(),
            timeline: [], elapsed: .seconds(10), startedAtMillis: 0, cancelled: 0, cancelTooLate: 0)
    }

    @Test("CPU per task: each process's and the broker's sum (not the load generator's), per task finished during the load")
    func cpuPerTask() {
        var outcome = Outcome()
        // 1,000 tasks/s for the 10 s load, then 5,000 more finishing after it (not in the CPU's window).
        outcome.finishedPerSecond = Array(repeating: 1000, count: 10) + [5000]
        let processes = [
            ProcessUsage(name: "coordinator", cpuPercent: 5, residentMiB: 1, peakResidentMiB: 1),
            ProcessUsage(name: "redis", cpuPercent: 3, residentMiB: 1, peakResidentMiB: 1),
            ProcessUsage(name: LoadReport.loadGeneratorName, cpuPercent: 50, residentMiB: 1, peakResidentMiB: 1),
        ]
        let report = LoadReport(mode: "test", mix: "noop=100", load: Self.result(accepted: 15000), outcome: outcome, processes: processes, objectives: [])
        #expect(report.finishedDuringLoadPerSecond == 1000)
        let perTask = report.processes.map { $0.cpuMicrosecondsPerTask ?? -1 }
        #expect(zip(perTask, [50.0, 30, 500]).allSatisfy { abs($0 - $1) < 1e-9 }, "\(perTask)")
        #expect(abs((report.cpuMicrosecondsPerTask ?? 0) - 80) < 1e-9)
        #expect(report.table.contains("CPU per task              80.0 µs"))
    }

    @Test("shed requests are reported apart and fail a run only when shedding was not expected")
    func shedding() throws {
        var outcome = Outcome()
        outcome.record(type: "noop", succeeded: true, latency: 1, finishedSecond: 1)
        let unexpected = LoadReport(mode: "test", mix: "noop=100", load: Self.result(accepted: 1, shedRequests: 3), outcome: outcome, processes: [], objectives: [])
        #expect(unexpected.shedRequests == 3 && unexpected.rejected == 0 && !unexpected.passed)
        #expect(unexpected.table.contains("not expected"))
        let expected = LoadReport(
            mode: "test", mix: "noop=100", load: Self.result(accepted: 1, shedRequests: 3), outcome: outcome, processes: [], objectives: [],
            sheddingExpected: true)
        #expect(expected.passed)
        #expect(expected.table.contains("3 tasks in 3 requests"))
        let json = try #require(try JSONSerialization.jsonObject(with: expected.json()) as? [String: Any])
        #expect(json["shed_requests"] as? Int == 3)
        #expect(json.keys.contains("accepted_enqueue_milliseconds"))
    }

    @Test("with two task types in the run, each gets its own line: what it kept beside the other")
    func perTypeLines() {
        var outcome = Outcome()
        for index in 0..<300 {
            let type = index < 200 ? "noop" : "limited"
            // The limited type's last task finishes at 20 s, after the 10 s load: its rate counts to then.
            let finished = type == "noop" ? 5.0 : 20.0
            outcome.record(type: type, succeeded: true, latency: type == "noop" ? 4 : 900, finishedSecond: finished)
        }
        let report = LoadReport(mode: "test", mix: "noop=2,limited=1", load: Self.result(accepted: 300), outcome: outcome, processes: [], objectives: [])
        #expect(report.types.map(\.type) == ["limited", "noop"])
        #expect(report.types.first { $0.type == "noop" }?.endToEndPerSecond == 20)
        #expect(report.types.first { $0.type == "limited" }?.endToEndPerSecond == 5)
        #expect(report.table.contains("by type"))
        #expect(report.table.contains("  noop") && report.table.contains("20/s"))
    }

    @Test("a run of one task type has no per-type lines")
    func oneType() {
        var outcome = Outcome()
        outcome.record(type: "noop", succeeded: true, latency: 1, finishedSecond: 1)
        let report = LoadReport(mode: "test", mix: "noop=100", load: Self.result(accepted: 1), outcome: outcome, processes: [], objectives: [])
        #expect(report.types.isEmpty)
        #expect(!report.table.contains("by type"))
    }
}
