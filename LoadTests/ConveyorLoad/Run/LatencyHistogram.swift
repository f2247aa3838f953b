import Histogram

/// Latencies in an HdrHistogram: microsecond resolution, three significant digits, up to ten minutes,
/// in constant memory however many samples a soak run records.
struct LatencyHistogram: Sendable {
    private var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)

    var count: Int { Int(histogram.totalCount) }

    mutating func record(milliseconds: Double) {
        let micros = UInt64(max(1, (milliseconds * 1000).rounded()))
        _ = histogram.record(min(micros, 600_000_000))
    }

    mutating func add(_ other: LatencyHistogram) {
        histogram.add(other.histogram)
    }

    /// The value at `percentile` (0–100), milliseconds; 0 when empty.
    func milliseconds(at percentile: Double) -> Double {
        count == 0 ? 0 : Double(histogram.valueAtPercentile(percentile)) / 1000
    }

    var maxMilliseconds: Double { count == 0 ? 0 : Double(histogram.max) / 1000 }
}
