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
    /// What else happens during the load (the soak's cancels and agent restarts).
    var churn: SoakChurn.Plan?
    /// Settings for the embedded coordinator and agents (flags' `--env` override them).
    var environment: [String: String] = [:]
    /// The coordinator is meant to shed part of this load (429/503 + Retry-After): shed requests are
    /// reported, and do not fail the run.
    var sheddingExpected = false

    /// Names in the order `--help` lists them.
    static let names = ["seed", "max", "max-single", "soak", "overload"]

    static func named(_ name: String) -> LoadPreset? {
        switch name {
        // The seed's own load test: 1,000 tasks a minute for a minute against ten agents, P95 enqueue < 200 ms.
        case "seed": LoadPreset(rate: "1000/min", duration: 60, agents: 10, slo: "p95=200ms")
        // The ceiling through the batch endpoint: closed loop, 500 tasks per request, 8 requests in flight.
        case "max": LoadPreset(closedLoop: true, duration: 60, agents: 2, agentConcurrency: 1000, batch: 500, concurrency: 8)
        // The ceiling through single POSTs.
        case "max-single": LoadPreset(closedLoop: true, duration: 60, agents: 2, agentConcurrency: 1000, concurrency: 64)
        // An hour at 60,000 tasks a minute with retries, dead letters, cancels and agent restarts,
        // retention two minutes: Redis, PostgreSQL and every process must stay flat after the warm-up.
        case "soak":
            LoadPreset(
                rate: "60000/min", duration: 3600, agents: 2, mix: "noop=86,sleep:5ms=5,fail:1x=7,fail:9x=2",
                churn: SoakChurn.Plan(cancelEvery: 100, agentRestartEvery: .seconds(60)),
                environment: [
                    "CONVEYOR_RETENTION": "2m", "CONVEYOR_DEAD_LETTER_LIMIT": "1000", "CONVEYOR_IDLE_CONSUMER_AFTER": "30s",
                ])
        // Twice the batch ceiling, open loop: the coordinator must shed what it cannot take (503 +
        // Retry-After) and keep the accepted requests' latency bounded; nothing accepted may be lost.
        case "overload":
            LoadPreset(
                rate: "2600000/min", duration: 60, agents: 2, agentConcurrency: 1000, batch: 500, concurrency: 256,
                sheddingExpected: true)
        default: nil
        }
    }
}
