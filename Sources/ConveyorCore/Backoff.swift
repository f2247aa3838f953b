/// Exponential backoff with full jitter: attempt n waits a uniformly random time in
/// `0 ... min(maximum, base × 2ⁿ)`. Full jitter spreads retries of many clients apart, so a recovering
/// Redis or PostgreSQL is not hit by all of them at the same instant.
public struct Backoff: Sendable, Hashable {
    public var base: Duration
    public var maximum: Duration

    public init(base: Duration, maximum: Duration) {
        self.base = base
        self.maximum = maximum
    }

    /// The upper bound of the wait before attempt `attempt` (0-based), without jitter.
    public func ceiling(attempt: Int) -> Duration {
        let exponent = min(max(attempt, 0), 40)
        let baseNanos = Double(base.components.seconds) * 1e9 + Double(base.components.attoseconds) / 1e9
        let maxNanos = Double(maximum.components.seconds) * 1e9 + Double(maximum.components.attoseconds) / 1e9
        let nanos = min(maxNanos, baseNanos * Double(1 << exponent))
        return .nanoseconds(Int64(nanos))
    }

    public func delay(attempt: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        let ceiling = ceiling(attempt: attempt)
        let nanos = Int64(ceiling.components.seconds) * 1_000_000_000 + ceiling.components.attoseconds / 1_000_000_000
        guard nanos > 0 else { return .zero }
        return .nanoseconds(Int64.random(in: 0...nanos, using: &generator))
    }

    public func delay(attempt: Int) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(attempt: attempt, using: &generator)
    }
}
