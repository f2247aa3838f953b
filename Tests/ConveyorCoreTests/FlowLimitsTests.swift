import ConveyorConfiguration
import ConveyorCore
import Testing

@Suite("Flow limits: rate syntax, priorities and the registry's limit settings")
struct FlowLimitsTests {
    @Test("rates read as count per second, minute or hour, with an optional burst")
    func rateSyntax() {
        #expect(RateLimit(text: "10/s") == RateLimit(count: 10, period: .seconds(1)))
        #expect(RateLimit(text: "600/min") == RateLimit(count: 600, period: .seconds(60)))
        #expect(RateLimit(text: "100/h burst 5") == RateLimit(count: 100, period: .seconds(3600), burst: 5))
        #expect(RateLimit(text: "10/s")?.intervalMillis == 100)
        #expect(RateLimit(text: "3/min")?.intervalMillis == 20_000)
        for bad in ["", "10", "0/s", "10/day", "-1/s", "10/s burst", "10/s burst 0", "10/s bursts 2", "ten/s"] {
            #expect(RateLimit(text: bad) == nil, "\(bad)")
        }
        #expect(RateLimit(text: "10/s burst 20")?.description == "10/s burst 20")
    }

    @Test("priorities read as names or 0–2, higher first")
    func priorities() {
        #expect(TaskPriority(text: "high") == .high)
        #expect(TaskPriority(text: "0") == .low)
        #expect(TaskPriority(text: "urgent") == nil)
        #expect(TaskPriority.high > TaskPriority.normal)
    }

    @Test("a type that declares nothing gets 5 at once across the cluster; the built-in benchmark types are uncapped")
    func defaults() throws {
        let registry = try TaskTypeRegistry(yaml: "types:\n  plain:\n    handler: noop\n", source: "t.yaml")
        #expect(registry["plain"]?.maxConcurrent == 5)
        #expect(registry["plain"]?.maxConcurrentPerAgent == nil)
        #expect(registry["plain"]?.isFlowControlled == true)
        for type in TaskTypeRegistry.builtIn.types.values {
            #expect(type.maxConcurrent == nil, "\(type.name)")
            #expect(!type.isFlowControlled)
        }
    }

    @Test("the registry reads max_concurrent (or unlimited), max_concurrent_per_agent, rate_limit and per_key")
    func registrySettings() throws {
        let yaml = """
            types:
              llm:
                handler: noop
                max_concurrent: 20
                max_concurrent_per_agent: 4
                rate_limit: 10/s burst 5
                per_key:
                  max_concurrent: 2
                  rate_limit: 1/s
              free:
                handler: noop
                max_concurrent: unlimited
            """
        let registry = try TaskTypeRegistry(yaml: yaml, source: "t.yaml")
        let llm = try #require(registry["llm"])
        #expect(llm.maxConcurrent == 20)
        #expect(llm.maxConcurrentPerAgent == 4)
        #expect(llm.rateLimit == RateLimit(count: 10, period: .seconds(1), burst: 5))
        #expect(llm.perKey == KeyLimits(maxConcurrent: 2, rateLimit: RateLimit(count: 1, period: .seconds(1))))
        #expect(registry["free"]?.maxConcurrent == nil)
        #expect(registry["free"]?.isFlowControlled == false)
    }

    @Test("bad limit settings name the setting at fault")
    func badSettings() {
        let cases: [(String, String)] = [
            ("    max_concurrent: 0", "types.t.max_concurrent"),
            ("    max_concurrent: lots", "types.t.max_concurrent"),
            ("    max_concurrent_per_agent: -2", "types.t.max_concurrent_per_agent"),
            ("    rate_limit: 10/day", "types.t.rate_limit"),
            ("    per_key: 2", "types.t.per_key"),
            ("    per_key: {}", "types.t.per_key"),
            ("    per_key: {max_concurrent: 2, burst: 3}", "types.t.per_key.burst"),
            ("    per_key: {rate_limit: fast}", "types.t.per_key.rate_limit"),
        ]
        for (line, key) in cases {
            do {
                _ = try TaskTypeRegistry(yaml: "types:\n  t:\n    handler: noop\n\(line)\n", source: "f.yaml")
                Issue.record("accepted: \(line)")
            } catch {
                #expect(error.key == "f.yaml: \(key)", "\(line): \(error)")
            }
        }
    }
}
