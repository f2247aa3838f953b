import Logging
import Synchronization

/// A command's output lines in the agent's log, with the task's metadata, up to a byte budget per
/// attempt shared by both streams; what does not fit is counted and reported in one closing line.
///
/// Why a budget: a chatty command must not flood the log (or Loki) and slow every other task.
final class OutputLog: Sendable {
    private struct Budget {
        var remaining: Int
        var droppedLines = 0
        var droppedBytes = 0
    }

    private let logger: Logger
    private let budget: Mutex<Budget>

    /// The longest line logged as one; longer ones are cut there.
    static let maximumLineBytes = 8 * 1024

    init(logger: Logger, budget: Int) {
        self.logger = logger
        self.budget = Mutex(Budget(remaining: budget))
    }

    func line(_ bytes: ArraySlice<UInt8>, stream: String) {
        let fits = budget.withLock { budget -> Bool in
            guard budget.remaining >= bytes.count else {
                budget.droppedLines += 1
                budget.droppedBytes += bytes.count
                budget.remaining = 0
                return false
            }
            budget.remaining -= bytes.count
            return true
        }
        guard fits else { return }
        logger.info("\(String(decoding: bytes, as: UTF8.self))", metadata: ["stream": "\(stream)"])
    }

    /// Logs how much was left out, if anything.
    func close() {
        let (lines, bytes) = budget.withLock { ($0.droppedLines, $0.droppedBytes) }
        guard lines > 0 else { return }
        logger.warning("command output over the log budget was dropped", metadata: ["dropped_lines": "\(lines)", "dropped_bytes": "\(bytes)"])
    }

    /// Splits one stream's chunks into lines.
    struct Lines {
        let stream: String
        private var pending: [UInt8] = []

        init(stream: String) { self.stream = stream }

        mutating func feed(_ chunk: UnsafeRawBufferPointer, into log: OutputLog) {
            for byte in chunk {
                if byte == UInt8(ascii: "\n") {
                    emit(into: log)
                } else if pending.count < OutputLog.maximumLineBytes {
                    pending.append(byte)
                }
            }
        }

        mutating func finish(into log: OutputLog) {
            if !pending.isEmpty { emit(into: log) }
        }

        private mutating func emit(into log: OutputLog) {
            var line = pending[...]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            log.line(line, stream: stream)
            pending.removeAll(keepingCapacity: true)
        }
    }
}
