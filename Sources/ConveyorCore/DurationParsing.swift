extension Duration {
    /// Parses durations as written in configuration: `250ms`, `30s`, `5m`, `1h`, `7d`, or a bare number of
    /// seconds (`30`, `0.5`). Nil when the text is none of these, negative, or longer than about a
    /// million years (client input such as `1e300s` must not overflow a conversion and crash the process).
    public init?(configurationText text: String) {
        let trimmed = text.trimmingCharacters(in: " ")
        let units: [(suffix: String, seconds: Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        for unit in units where trimmed.hasSuffix(unit.suffix) {
            let number = trimmed.dropLast(unit.suffix.count)
            // "5ms" also ends in "s": only accept the suffix when what precedes it is a number.
            guard let value = Double(number), value >= 0, value.isFinite else { continue }
            guard let parsed = Self.fromSeconds(value * unit.seconds) else { return nil }
            self = parsed
            return
        }
        guard let seconds = Double(trimmed), let parsed = Self.fromSeconds(seconds) else { return nil }
        self = parsed
    }

    /// The longest duration configuration or a client may write: 2^45 s, over a million years.
    private static let longestSeconds = Double(1 << 45)

    private static func fromSeconds(_ seconds: Double) -> Duration? {
        guard seconds >= 0, seconds <= longestSeconds else { return nil }
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }

    /// Whole milliseconds, rounded down.
    public var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }

    /// Seconds with their fraction, for reports and rates.
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

extension String {
    fileprivate func trimmingCharacters(in character: Character) -> String {
        var slice = Substring(self)
        while slice.first == character { slice = slice.dropFirst() }
        while slice.last == character { slice = slice.dropLast() }
        return String(slice)
    }
}
