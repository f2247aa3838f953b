/// How fast tasks of a type (or of one limit key within a type) may start, cluster-wide: a GCRA rate
/// (`count` per `period`) that lets `burst` starts through at once after a quiet spell.
///
/// Written `10/s`, `600/min` or `100/h`; a burst is written after it (`10/s burst 20`) or set apart.
/// Burst 1 (the default) spaces starts evenly: in any window of length t at most `1 + rate × t` start.
public struct RateLimit: Sendable, Hashable, CustomStringConvertible {
    public var count: Int
    public var period: Duration
    public var burst: Int

    public init(count: Int, period: Duration, burst: Int = 1) {
        self.count = count
        self.period = period
        self.burst = burst
    }

    /// The spacing of starts at the steady rate (GCRA's emission interval), in ms; at least 1.
    public var intervalMillis: Int64 { max(1, period.milliseconds / Int64(count)) }

    public var description: String {
        let unit = period == .seconds(1) ? "s" : period == .seconds(60) ? "min" : "h"
        return burst > 1 ? "\(count)/\(unit) burst \(burst)" : "\(count)/\(unit)"
    }

    /// Parses `10/s`, `600/min`, `100/h` (also `sec`, `second`, `m`, `minute`, `hour`), optionally
    /// followed by ` burst N`. Nil when malformed, or the count or burst is not 1…1,000,000.
    public init?(text: String) {
        let words = text.split(separator: " ", omittingEmptySubsequences: true)
        guard words.count == 1 || (words.count == 3 && words[1] == "burst") else { return nil }
        let parts = words[0].split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let count = Int(parts[0]), (1...1_000_000).contains(count) else { return nil }
        let period: Duration
        switch parts[1].lowercased() {
        case "s", "sec", "second": period = .seconds(1)
        case "m", "min", "minute": period = .seconds(60)
        case "h", "hour": period = .seconds(3600)
        default: return nil
        }
        var burst = 1
        if words.count == 3 {
            guard let value = Int(words[2]), (1...1_000_000).contains(value) else { return nil }
            burst = value
        }
        self.init(count: count, period: period, burst: burst)
    }
}

/// The limits each value of a submission's `limit_key` gets within its type (a customer, a user):
/// held across every agent, like the type's own.
public struct KeyLimits: Sendable, Hashable {
    public var maxConcurrent: Int?
    public var rateLimit: RateLimit?

    public init(maxConcurrent: Int? = nil, rateLimit: RateLimit? = nil) {
        self.maxConcurrent = maxConcurrent
        self.rateLimit = rateLimit
    }
}

/// Which of a queue's ready streams a task waits in. Agents share their reads among the levels by
/// weight (``readWeight``), so higher levels start first and lower ones still get a share: never starved.
public enum TaskPriority: Int, Sendable, Hashable, CaseIterable, Comparable {
    case low = 0
    case normal = 1
    case high = 2

    /// Parses `0`…`2` or `low`, `normal`, `high`.
    public init?(text: String) {
        switch text {
        case "low", "0": self = .low
        case "normal", "1": self = .normal
        case "high", "2": self = .high
        default: return nil
        }
    }

    public var name: String {
        switch self {
        case .low: "low"
        case .normal: "normal"
        case .high: "high"
        }
    }

    /// Each level's share of an agent's reads while several levels have work: 6 : 3 : 1, so a flood of
    /// high-priority tasks still lets a tenth of the starts go to low ones.
    public var readWeight: Int {
        switch self {
        case .high: 6
        case .normal: 3
        case .low: 1
        }
    }

    public static func < (lhs: TaskPriority, rhs: TaskPriority) -> Bool { lhs.rawValue < rhs.rawValue }
}
