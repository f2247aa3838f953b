import Foundation

/// Reads the agents' execution journal (`CONVEYOR_EXECUTION_JOURNAL`): one line per attempt started,
/// `<task id> <attempt> <agent> <unix ms>`, and one per attempt ended, `end <task id> <attempt> <agent> <unix ms>`.
public enum ExecutionJournalFile {
    /// One line of the journal.
    public struct Execution: Sendable {
        public var task: Int64
        public var attempt: Int
        public var agent: String
        public var atMillis: Int64
    }

    /// Every execution, in the order the lines were written.
    public static func executions(path: String) -> [Execution] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count == 4, let task = Int64(parts[0]), let attempt = Int(parts[1]), let at = Int64(parts[3]) else { return nil }
            return Execution(task: task, attempt: attempt, agent: String(parts[2]), atMillis: at)
        }
    }

    /// One attempt's run on one agent: from its start line to its end line (nil when the agent died first).
    public struct Run: Sendable {
        public var task: Int64
        public var attempt: Int
        public var agent: String
        public var startMillis: Int64
        public var endMillis: Int64?
    }

    /// Every run in the journals, matched start to end by (task, attempt, agent).
    public static func runs(paths: [String]) -> [Run] {
        var runs: [Run] = []
        var open: [String: [Int]] = [:]
        for path in paths {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: " ")
                if parts.count == 5, parts[0] == "end", let at = Int64(parts[4]) {
                    let key = "\(parts[1]) \(parts[2]) \(parts[3])"
                    if let index = open[key]?.first {
                        open[key]!.removeFirst()
                        runs[index].endMillis = at
                    }
                } else if parts.count == 4, let task = Int64(parts[0]), let attempt = Int(parts[1]), let at = Int64(parts[3]) {
                    open["\(parts[0]) \(parts[1]) \(parts[2])", default: []].append(runs.count)
                    runs.append(Run(task: task, attempt: attempt, agent: String(parts[2]), startMillis: at))
                }
            }
        }
        return runs
    }

    /// The most runs that were under way at one instant (a run without an end counts until `openUntil`).
    /// A run ending at the instant another starts does not overlap it.
    public static func maxOverlap(_ runs: [Run], openUntil: Int64 = .max) -> Int {
        var edges: [(at: Int64, delta: Int)] = []
        for run in runs {
            edges.append((run.startMillis, 1))
            edges.append((run.endMillis ?? openUntil, -1))
        }
        edges.sort { $0.at != $1.at ? $0.at < $1.at : $0.delta < $1.delta }
        var current = 0
        var most = 0
        for edge in edges {
            current += edge.delta
            most = max(most, current)
        }
        return most
    }

    /// Executions per task id: the first field only, read without splitting lines, for journals of
    /// millions of lines.
    public static func executionsPerTask(path: String) -> [Int64: Int] {
        guard let data = FileManager.default.contents(atPath: path) else { return [:] }
        var counts: [Int64: Int] = [:]
        data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            var value: Int64 = 0
            var atLineStart = true
            var inFirstField = true
            for byte in bytes {
                if byte == UInt8(ascii: "\n") {
                    atLineStart = true
                    inFirstField = true
                    continue
                }
                if atLineStart {
                    value = 0
                    atLineStart = false
                    // An end line (`end …`) is not an execution.
                    if byte == UInt8(ascii: "e") { inFirstField = false }
                }
                guard inFirstField else { continue }
                if byte == UInt8(ascii: " ") {
                    counts[value, default: 0] += 1
                    inFirstField = false
                } else if byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                    value = value * 10 + Int64(byte - UInt8(ascii: "0"))
                }
            }
        }
        return counts
    }
}
