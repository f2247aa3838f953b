import Foundation

/// An append-only file with one line per attempt started, `<task id> <attempt> <agent> <unix ms>`, and
/// for types with a cluster-wide limit, one per attempt ended, `end <task id> <attempt> <agent> <unix ms>`:
/// run intervals, from which the proofs of those limits measure how many attempts overlapped.
///
/// A testing aid (`CONVEYOR_EXECUTION_JOURNAL`): PostgreSQL keeps one event per (task, attempt, status),
/// so a rerun of an attempt after a crash leaves no trace there. The chaos test counts duplicate
/// executions from this file instead. Each line is one `write(2)` on an `O_APPEND` descriptor, so lines
/// from several agent processes never interleave and a line survives its process being SIGKILLed.
final class ExecutionJournal: Sendable {
    private let descriptor: Int32

    init(path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path, NSLocalizedDescriptionKey: String(cString: strerror(errno))])
        }
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    func record(taskID: String, attempt: Int, agent: String, atMillis: Int64) {
        append("\(taskID) \(attempt) \(agent) \(atMillis)\n")
    }

    func recordEnd(taskID: String, attempt: Int, agent: String, atMillis: Int64) {
        append("end \(taskID) \(attempt) \(agent) \(atMillis)\n")
    }

    private func append(_ text: String) {
        let line = Array(text.utf8)
        _ = line.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    }
}
