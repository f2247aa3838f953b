/// A named load (`--preset`): every flag it sets can still be overridden on the command line.
struct LoadPreset: Sendable {
    var rate: String?
    var closedLoop = false
    var duration: Int
    var agents: Int
    /// Slots per agent: noop tasks take no time, so at the ceiling an agent's throughput is its slots
    /// divided by the round trip that frees them.
    var agentConcurrency = 64
    var batch = 1
    var concurrency = 64
    var mix = "noop=100"
    var slo: String?

    /// Names in the order `--help` lists them.
    static let names = ["seed", "max", "max-single", "soak"]

    static func named(_ name: String) -> LoadPreset? {
        switch name {
        // The seed's own load test: 1,000 tasks a minute for a minute against ten agents, P95 enqueue < 200 ms.
        case "seed": LoadPreset(rate: "1000/min", duration: 60, agents: 10, slo: "p95=200ms")
        // The ceiling through the batch endpoint: closed loop, 500 tasks per request, 8 requests in flight.
        case "max": LoadPreset(closedLoop: true, duration: 60, agents: 2, agentConcurrency: 1000, batch: 500, concurrency: 8)
        // The ceiling through single POSTs.
        case "max-single": LoadPreset(closedLoop: true, duration: 60, agents: 2, agentConcurrency: 1000, concurrency: 64)
        // An hour at 60,000 tasks a minute with some 5 ms tasks: memory must stay flat, latency steady.
        case "soak": LoadPreset(rate: "60000/min", duration: 3600, agents: 2, mix: "noop=90,sleep:5ms=10", slo: "p99=10ms")
        default: nil
        }
    }
}
