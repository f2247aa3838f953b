@testable import conveyor_load
import ConveyorEmbedded
import NIOCore
import Testing

@Suite("Load shape flags")
struct LoadShapeTests {
    @Test("a rate reads as tasks per second in s, min or h")
    func rates() throws {
        #expect(try LoadShape.rate("20000/s") == 20000)
        #expect(try LoadShape.rate("1000/min") == 1000.0 / 60)
        #expect(try LoadShape.rate("3600/h") == 1)
        #expect(throws: LoadShapeError.self) { try LoadShape.rate("1000") }
        #expect(throws: LoadShapeError.self) { try LoadShape.rate("0/s") }
        #expect(throws: LoadShapeError.self) { try LoadShape.rate("10/day") }
    }

    @Test("a mix is normalised to shares, and the sequence of kinds follows them exactly per thousand")
    func mixes() throws {
        let mix = try LoadShape.mix("noop=90,sleep=10")
        #expect(mix.map(\.type) == ["noop", "sleep"])
        #expect(abs(mix[0].share - 0.9) < 1e-9)
        let types = (0..<1000).map { LoadShape.entry(at: $0, in: mix).type }
        #expect(types.filter { $0 == "sleep" }.count == 100)
        #expect(throws: LoadShapeError.self) { try LoadShape.mix("noop") }
        #expect(throws: LoadShapeError.self) { try LoadShape.mix("noop=-1") }
        #expect(throws: LoadShapeError.self) { try LoadShape.mix("no\"op=1") }
    }

    @Test("a mix item type:5ms carries params {\"ms\":5}, the sleep handler's")
    func mixWithDuration() throws {
        let mix = try LoadShape.mix("noop=90,sleep:5ms=10")
        #expect(mix[0].json == "{\"type\":\"noop\"}")
        #expect(mix[1] == MixEntry(type: "sleep", params: "{\"ms\":5}", share: 0.1))
        #expect(mix[1].json == "{\"type\":\"sleep\",\"params\":{\"ms\":5}}")
        #expect(try LoadShape.mix("sleep:1s=1")[0].params == "{\"ms\":1000}")
        #expect(throws: LoadShapeError.self) { try LoadShape.mix("sleep:5=1") }
        #expect(throws: LoadShapeError.self) { try LoadShape.mix("sleep:0.5ms=1") }
    }

    @Test("an SLO names a percentile of enqueue or end-to-end latency and a bound")
    func objectives() throws {
        let objectives = try LoadShape.objectives("p95=200ms,p99.9=1s,e2e-p99=100ms")
        #expect(objectives == [
            ServiceLevelObjective(measure: .enqueue, percentile: 95, limitMilliseconds: 200),
            ServiceLevelObjective(measure: .enqueue, percentile: 99.9, limitMilliseconds: 1000),
            ServiceLevelObjective(measure: .endToEnd, percentile: 99, limitMilliseconds: 100),
        ])
        #expect(objectives.map(\.description) == ["p95=200ms", "p99.9=1s", "e2e-p99=100ms"])
        #expect(throws: LoadShapeError.self) { try LoadShape.objectives("p95") }
        #expect(throws: LoadShapeError.self) { try LoadShape.objectives("q95=1ms") }
        #expect(throws: LoadShapeError.self) { try LoadShape.objectives("p101=1ms") }
        #expect(throws: LoadShapeError.self) { try LoadShape.objectives("p95=fast") }
    }

    @Test("the HdrHistogram reports percentiles within its three significant digits")
    func histogram() {
        var histogram = LatencyHistogram()
        for value in 1...1000 { histogram.record(milliseconds: Double(value)) }
        #expect(abs(histogram.milliseconds(at: 50) - 500) <= 0.5)
        #expect(abs(histogram.milliseconds(at: 99) - 990) <= 1)
        #expect(abs(histogram.maxMilliseconds - 1000) <= 1)
        #expect(LatencyHistogram().milliseconds(at: 99) == 0)
    }

    @Test("accepted ids are read from single and batch replies without decoding them")
    func acceptedIDs() {
        #expect(LoadRun.acceptedIDs(in: ByteBuffer(string: "{\"id\":42,\"status\":\"queued\"}"), single: true) == [42])
        let batch = ByteBuffer(string: "{\"tasks\":[{\"id\":1001,\"status\":\"queued\"},{\"id\": 1002,\"status\":\"queued\"}]}")
        #expect(LoadRun.acceptedIDs(in: batch, single: false) == [1001, 1002])
        #expect(LoadRun.acceptedIDs(in: ByteBuffer(string: "{\"error\":{\"code\":\"x\"}}"), single: true).isEmpty)
    }

    @Test("presets fill what the flags leave out, and flags win")
    func presets() throws {
        let seed = try RunCommand.parse(["--preset", "seed"]).resolve()
        #expect(seed.embedded && seed.agents == 10 && seed.duration == 60 && seed.batch == 1)
        #expect(seed.rate == 1000.0 / 60 && seed.objectives.map(\.description) == ["p95=200ms"])
        let max = try RunCommand.parse(["--preset", "max", "--duration", "10"]).resolve()
        #expect(max.rate == nil && max.batch == 500 && max.duration == 10)
        let remote = try RunCommand.parse(["--preset", "seed", "--url", "http://127.0.0.1:9"]).resolve()
        #expect(!remote.embedded)
        #expect(throws: (any Error).self) { try RunCommand.parse(["--preset", "nope"]).resolve() }
        #expect(throws: (any Error).self) { try RunCommand.parse(["--rate", "10/s", "--max"]).resolve() }
        #expect(throws: (any Error).self) { try RunCommand.parse([]).resolve() }
    }

    @Test("the chart's axis tops are 1, 2 or 5 times a power of ten")
    func chartScale() {
        #expect(LoadChart.niceCeiling(0) == 1)
        #expect(LoadChart.niceCeiling(7) == 10)
        #expect(LoadChart.niceCeiling(15_300) == 20_000)
        #expect(LoadChart.niceCeiling(0.3) == 0.5)
    }

    @Test("the execution journal counts executions per task")
    func journal() throws {
        let path = FileManagerPath.temporary("journal")
        try "1001 1 a 5\n1001 1 b 6\n1002 1 a 7\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(ExecutionJournalFile.executionsPerTask(path: path) == [1001: 2, 1002: 1])
    }
}

import Foundation

enum FileManagerPath {
    static func temporary(_ name: String) -> String {
        NSTemporaryDirectory() + "conveyor-load-\(name)-\(UUID().uuidString)"
    }
}
