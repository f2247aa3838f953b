import Foundation

/// What `conveyor-load run` parses from its flags: pure, so it is unit-tested without a server.
enum LoadShape {
    /// `1000/min`, `20000/s`, `50/sec`, `3600/h` → tasks per second.
    static func rate(_ text: String) throws(LoadShapeError) -> Double {
        let parts = text.lowercased().split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2, let count = Double(parts[0]), count > 0 else {
            throw LoadShapeError("rate '\(text)' must look like 1000/min or 20000/s")
        }
        switch parts[1] {
        case "s", "sec", "second": return count
        case "m", "min", "minute": return count / 60
        case "h", "hour": return count / 3600
        default: throw LoadShapeError("rate '\(text)': the unit must be s, min or h")
        }
    }

    /// `noop=90,sleep=10` → task types with their share (summing to 1).
    static func mix(_ text: String) throws(LoadShapeError) -> [(type: String, share: Double)] {
        var weights: [(String, Double)] = []
        for item in text.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, let weight = Double(parts[1]), weight > 0 else {
                throw LoadShapeError("mix item '\(item)' must look like noop=90")
            }
            weights.append((parts[0], weight))
        }
        let total = weights.reduce(0) { $0 + $1.1 }
        guard total > 0 else { throw LoadShapeError("mix '\(text)' names no task type") }
        return weights.map { ($0.0, $0.1 / total) }
    }

    /// The task type of the `index`th task: a deterministic spread that matches the shares over any
    /// run of tasks (no randomness, so two runs submit the same sequence).
    static func type(at index: Int, in mix: [(type: String, share: Double)]) -> String {
        let position = Double(index % 1000) / 1000
        var cumulative = 0.0
        for entry in mix {
            cumulative += entry.share
            if position < cumulative { return entry.type }
        }
        return mix.last?.type ?? "noop"
    }

    /// The value at `quantile` (0–1) of sorted samples (nearest rank).
    static func percentile(_ sorted: [Double], _ quantile: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((quantile * Double(sorted.count)).rounded(.up)) - 1
        return sorted[min(max(rank, 0), sorted.count - 1)]
    }
}

struct LoadShapeError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
