import Foundation

/// Reads the agents' execution journal (`CONVEYOR_EXECUTION_JOURNAL`): one line per attempt started,
/// `<task id> <attempt> <agent> <unix ms>`.
enum ExecutionJournalFile {
    /// One line of the journal.
    struct Execution: Sendable {
        var task: Int64
        var attempt: Int
        var agent: String
        var atMillis: Int64
    }

    /// Every execution, in the order the lines were written.
    static func executions(path: String) -> [Execution] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count == 4, let task = Int64(parts[0]), let attempt = Int(parts[1]), let at = Int64(parts[3]) else { return nil }
            return Execution(task: task, attempt: attempt, agent: String(parts[2]), atMillis: at)
        }
    }

    /// Executions per task id: the first field only, read without splitting lines, for journals of
    /// millions of lines.
    static func executionsPerTask(path: String) -> [Int64: Int] {
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
