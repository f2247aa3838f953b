@testable import conveyor_load
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

    @Test("a mix is normalised to shares, and the sequence of types follows them exactly per thousand")
    func mixes() throws {
        let mix = try LoadShape.mix("noop=90,sleep=10")
        #expect(mix.map(\.type) == ["noop", "sleep"])
        #expect(abs(mix[0].share - 0.9) < 1e-9)
        let types = (0..<1000).map { LoadShape.type(at: $0, in: mix) }
        #expect(types.filter { $0 == "sleep" }.count == 100)
        #expect(throws: LoadShapeError.self) { try LoadShape.mix("noop") }
        #expect(throws: LoadShapeError.self) { try LoadShape.mix("noop=-1") }
    }

    @Test("percentiles use the nearest rank")
    func percentiles() {
        let samples = (1...100).map(Double.init)
        #expect(LoadShape.percentile(samples, 0.5) == 50)
        #expect(LoadShape.percentile(samples, 0.99) == 99)
        #expect(LoadShape.percentile(samples, 1) == 100)
        #expect(LoadShape.percentile([], 0.5) == 0)
    }
}
