import Foundation

/// `--chart run.svg`: throughput (accepted and finished per second) above latency (enqueue P50 and P99
/// per second, end-to-end P99 of the tasks finishing in that second), on a shared time axis. Plain SVG,
/// so a browser or the README shows it with nothing installed.
enum LoadChart {
    struct Series {
        var name: String
        var color: String
        var values: [Double]
    }

    static func svg(_ report: LoadReport) -> String {
        let accepted = Series(name: "accepted tasks/s", color: "#1f77b4", values: report.timeline.map { Double($0.accepted) })
        let finished = Series(name: "finished tasks/s (PostgreSQL)", color: "#2ca02c", values: report.finishedPerSecond.map(Double.init))
        let p50 = Series(name: "enqueue P50 ms", color: "#9467bd", values: report.timeline.map(\.enqueueP50Milliseconds))
        let p99 = Series(name: "enqueue P99 ms", color: "#d62728", values: report.timeline.map(\.enqueueP99Milliseconds))
        let endToEnd = Series(name: "end-to-end P99 ms", color: "#ff7f0e", values: report.endToEndP99PerSecond)
        let seconds = max(accepted.values.count, finished.values.count, 1)
        let title = "conveyor-load: \(report.mode), mix \(report.mix)"
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="960" height="620" font-family="sans-serif" font-size="12">
            <rect width="960" height="620" fill="white"/>
            <text x="480" y="22" text-anchor="middle" font-size="15">\(escape(title))</text>

            """
        svg += panel(top: 40, title: "throughput (tasks per second)", series: [accepted, finished], seconds: seconds)
        svg += panel(top: 330, title: "latency (milliseconds)", series: [p50, p99, endToEnd], seconds: seconds)
        svg += "</svg>\n"
        return svg
    }

    /// One plot: axes, grid, a polyline per series and a legend. 800 × 220 plot area at x = 80.
    private static func panel(top: Double, title: String, series: [Series], seconds: Int) -> String {
        let left = 80.0, width = 800.0, height = 220.0
        let highest = series.flatMap(\.values).max() ?? 0
        let ceiling = niceCeiling(highest)
        var out = "<text x=\"\(left)\" y=\"\(top - 6)\" font-size=\"13\">\(escape(title))</text>\n"
        out += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(width)\" height=\"\(height)\" fill=\"none\" stroke=\"#999\"/>\n"
        for step in 0...4 {
            let value = ceiling * Double(step) / 4
            let y = top + height - height * Double(step) / 4
            out += "<line x1=\"\(left)\" y1=\"\(format(y))\" x2=\"\(left + width)\" y2=\"\(format(y))\" stroke=\"#eee\"/>\n"
            out += "<text x=\"\(left - 6)\" y=\"\(format(y + 4))\" text-anchor=\"end\">\(label(value))</text>\n"
        }
        let tick = max(1, seconds / 10)
        for second in stride(from: 0, through: seconds, by: tick) {
            let x = left + width * Double(second) / Double(seconds)
            out += "<text x=\"\(format(x))\" y=\"\(top + height + 16)\" text-anchor=\"middle\">\(second) s</text>\n"
        }
        for (index, line) in series.enumerated() where !line.values.isEmpty {
            let points = line.values.enumerated().map { second, value in
                let x = left + width * (Double(second) + 0.5) / Double(seconds)
                let y = top + height - (ceiling > 0 ? height * value / ceiling : 0)
                return "\(format(x)),\(format(y))"
            }
            out += "<polyline fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"1.5\" points=\"\(points.joined(separator: " "))\"/>\n"
            let legendY = top + 14 + Double(index) * 16
            out += "<rect x=\"\(left + width - 200)\" y=\"\(legendY - 9)\" width=\"10\" height=\"10\" fill=\"\(line.color)\"/>"
            out += "<text x=\"\(left + width - 185)\" y=\"\(legendY)\">\(escape(line.name))</text>\n"
        }
        return out
    }

    /// 1, 2 or 5 times a power of ten, at or above `value`.
    static func niceCeiling(_ value: Double) -> Double {
        guard value > 0 else { return 1 }
        let magnitude = pow(10, floor(log10(value)))
        for factor in [1.0, 2, 5, 10] where factor * magnitude >= value { return factor * magnitude }
        return 10 * magnitude
    }

    private static func label(_ value: Double) -> String {
        value >= 1000 ? String(format: "%gk", value / 1000) : value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value)
    }

    private static func format(_ value: Double) -> String { String(format: "%.1f", value) }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
