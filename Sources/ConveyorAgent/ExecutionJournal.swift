import ConveyorCore
import Foundation
import Synchronization

/// An append-only file with one line per attempt started, `<task id> <attempt> <agent> <unix ms>`, and
/// for types with a cluster-wide limit, one per attempt ended, `end <task id> <attempt> <agent> <unix ms>`:
/// run intervals, from which the proofs of those limits measure how many attempts overlapped.
///
/// A testing aid (`CONVEYOR_EXECUTION_JOURNAL`): PostgreSQL keeps one event per (task, attempt, status),
/// so a rerun of an attempt after a crash leaves no trace there. The chaos test counts duplicate
/// executions from this file instead. Every write is one `write(2)` of whole lines on an `O_APPEND`
/// descriptor, so lines from several agent processes never interleave, and a line is in the file before
/// its attempt starts: it survives its process being SIGKILLed.
final class ExecutionJournal: Sendable {
    private let descriptor: Int32
    private let writeCount = Atomic<Int>(0)

    init(path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path, NSLocalizedDescriptionKey: String(cString: strerror(errno))])
        }
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// The `write(2)` calls made so far.
    var writes: Int { writeCount.load(ordering: .relaxed) }

    func record(taskID: String, attempt: Int, agent: String, atMillis: Int64) {
        append("\(taskID) \(attempt) \(agent) \(atMillis)\n")
    }

    /// The starts of several attempts, in one write. The Executor journals the attempts it is about to
    /// start together: the load generator turns the journal on for every run, and a `write(2)` per task
    /// was about a tenth of an agent's CPU at the throughput ceiling, a cost no user's agent pays.
    func recordStarts(of envelopes: some Sequence<TaskEnvelope>, agent: String, atMillis: Int64) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64 * envelopes.underestimatedCount)
        for envelope in envelopes {
            bytes.appendSigned(envelope.id.rawValue)
            bytes.append(0x20)
            bytes.appendSigned(Int64(envelope.attempt))
            bytes.append(0x20)
            bytes.append(contentsOf: agent.utf8)
            bytes.append(0x20)
            bytes.appendSigned(atMillis)
            bytes.append(0x0A)
        }
        write(bytes)
    }

    func recordEnd(taskID: String, attempt: Int, agent: String, atMillis: Int64) {
        append("end \(taskID) \(attempt) \(agent) \(atMillis)\n")
    }

    private func append(_ text: String) {
        write(Array(text.utf8))
    }

    private func write(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        writeCount.add(1, ordering: .relaxed)
        _ = bytes.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
    }
}

extension [UInt8] {
    /// `value` as `String(value)` spells it.
    fileprivate mutating func appendSigned(_ value: Int64) {
        if value < 0 { append(0x2D) }
        appendDecimalDigits(of: value.magnitude)
    }
}
