import Foundation

/// One kind of task in a load's mix: a type, the params each task of it carries, and its share.
struct MixEntry: Sendable, Equatable {
    var type: String
    /// The task's `params` as JSON text, or nil for none.
    var params: String?
    var share: Double

    /// The task as it goes into a request body.
    var json: String {
        params.map { "{\"type\":\"\(type)\",\"params\":\($0)}" } ?? "{\"type\":\"\(type)\"}"
    }
}

/// A latency objective from `--slo`: a percentile of enqueue or end-to-end latency must not exceed a bound.
struct ServiceLevelObjective: Sendable, Equatable, CustomStringConvertible {
    enum Measure: String, Sendable { case enqueue, endToEnd = "e2e" }
    var measure: Measure
    /// 0–100.
    var percentile: Double
    var limitMilliseconds: Double

    var description: String {
        let name = "\(measure == .endToEnd ? "e2e-" : "")p\(LoadShape.percentileName(percentile))"
        return "\(name)=\(LoadShape.formatMilliseconds(limitMilliseconds))"
    }
}

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

    /// `noop=90,sleep:5ms=10` → task kinds with their share (summing to 1). `type:5ms` is a task of
    /// that type with params `{"ms":5}` (what the built-in `sleep` handler reads); `type:2x` has params
    /// `{"times":2}` (the built-in `fail` fails that many attempts first).
    static func mix(_ text: String) throws(LoadShapeError) -> [MixEntry] {
        var entries: [MixEntry] = []
        for item in text.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, let weight = Double(parts[1]), weight > 0 else {
                throw LoadShapeError("mix item '\(item)' must look like noop=90 or sleep:5ms=10")
            }
            let name = parts[0].split(separator: ":", maxSplits: 1).map(String.init)
            var params: String?
            if name.count == 2, name[1].hasSuffix("x"), let times = Int(name[1].dropLast()), times >= 0 {
                params = "{\"times\":\(times)}"
            } else if name.count == 2 {
                let milliseconds = try duration(name[1])
                guard milliseconds == milliseconds.rounded() else {
                    throw LoadShapeError("mix item '\(item)': the duration must be whole milliseconds")
                }
                params = "{\"ms\":\(Int(milliseconds))}"
            }
            guard name[0].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }) else {
                throw LoadShapeError("mix item '\(item)': '\(name[0])' is not a task type name")
            }
            entries.append(MixEntry(type: name[0], params: params, share: weight))
        }
        let total = entries.reduce(0) { $0 + $1.share }
        guard total > 0 else { throw LoadShapeError("mix '\(text)' names no task type") }
        return entries.map { MixEntry(type: $0.type, params: $0.params, share: $0.share / total) }
    }

    /// `p95=200ms,p99.9=1s,e2e-p99=100ms` → objectives.
    static func objectives(_ text: String) throws(LoadShapeError) -> [ServiceLevelObjective] {
        var result: [ServiceLevelObjective] = []
        for item in text.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard parts.count == 2 else { throw LoadShapeError("SLO '\(item)' must look like p95=200ms or e2e-p99=100ms") }
            var name = Substring(parts[0])
            var measure = ServiceLevelObjective.Measure.enqueue
            if name.hasPrefix("e2e-") {
                measure = .endToEnd
                name = name.dropFirst(4)
            }
            guard name.hasPrefix("p"), let percentile = Double(name.dropFirst()), percentile > 0, percentile <= 100 else {
                throw LoadShapeError("SLO '\(item)': '\(parts[0])' must be a percentile such as p95 or e2e-p99")
            }
            result.append(ServiceLevelObjective(measure: measure, percentile: percentile, limitMilliseconds: try duration(parts[1])))
        }
        guard !result.isEmpty else { throw LoadShapeError("--slo names no objective") }
        return result
    }

    /// `5ms`, `1.5s`, `200us` → milliseconds.
    static func duration(_ text: String) throws(LoadShapeError) -> Double {
        let lowered = text.lowercased()
        for (suffix, scale) in [("ms", 1.0), ("us", 0.001), ("s", 1000.0)] where lowered.hasSuffix(suffix) {
            if let value = Double(lowered.dropLast(suffix.count)), value >= 0 { return value * scale }
        }
        throw LoadShapeError("'\(text)' must be a duration such as 5ms, 200us or 1.5s")
    }

    /// The kind of the `index`th task: a deterministic spread that matches the shares over any run of
    /// a thousand tasks (no randomness, so two runs submit the same sequence).
    static func entry(at index: Int, in mix: [MixEntry]) -> MixEntry {
        let position = Double(index % 1000) / 1000
        var cumulative = 0.0
        for entry in mix {
            cumulative += entry.share
            if position < cumulative { return entry }
        }
        return mix[mix.count - 1]
    }

    static func percentileName(_ percentile: Double) -> String {
        percentile == percentile.rounded() ? String(Int(percentile)) : String(percentile)
    }

    static func formatMilliseconds(_ milliseconds: Double) -> String {
        milliseconds >= 1000 && milliseconds.truncatingRemainder(dividingBy: 1000) == 0
            ? "\(Int(milliseconds / 1000))s" : "\(milliseconds == milliseconds.rounded() ? String(Int(milliseconds)) : String(milliseconds))ms"
    }
}

struct LoadShapeError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
