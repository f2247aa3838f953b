@testable import conveyor_load
import Testing

@Suite("Load report")
struct LoadReportTests {
    private static func result(accepted: Int) -> LoadRun.Result {
        LoadRun.Result(
            acceptedIDs: Array(1...Int64(accepted)), submittedTasks: accepted, failedTasks: 0, errors: [:], enqueue: LatencyHistogram(),
            timeline: [], elapsed: .seconds(10), startedAtMillis: 0, cancelled: 0, cancelTooLate: 0)
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
