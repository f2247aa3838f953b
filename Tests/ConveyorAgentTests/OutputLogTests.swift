@testable import ConveyorAgent
import Logging
import Synchronization
import Testing

@Suite("A command's output in the agent's log")
struct OutputLogTests {
    /// Keeps every line logged, with its merged metadata.
    private final class Capture: Sendable {
        let lines = Mutex<[(level: Logger.Level, message: String, metadata: Logger.Metadata)]>([])
    }

    private struct CaptureHandler: LogHandler {
        let capture: Capture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
            capture.lines.withLock { $0.append((event.level, event.message.description, merged)) }
        }
    }

    private func logger(_ capture: Capture) -> Logger {
        var logger = Logger(label: "test") { _ in CaptureHandler(capture: capture) }
        logger[metadataKey: "task_id"] = "42"
        logger[metadataKey: "task_type"] = "shell"
        logger[metadataKey: "correlation_id"] = "c-1"
        return logger
    }

    private func feed(_ text: String, into lines: inout OutputLog.Lines, log: OutputLog) {
        Array(text.utf8).withUnsafeBytes { lines.feed($0, into: log) }
    }

    @Test("each line, however the chunks fall, is one log line carrying the task's id, type, correlation id and stream")
    func linesCarryTheTask() {
        let capture = Capture()
        let log = OutputLog(logger: logger(capture), budget: 1024)
        var lines = OutputLog.Lines(stream: "stderr")
        feed("first li", into: &lines, log: log)
        feed("ne\r\nsecond\nthi", into: &lines, log: log)
        feed("rd", into: &lines, log: log)
        lines.finish(into: log)
        log.close()
        let logged = capture.lines.withLock { $0 }
        #expect(logged.map(\.message) == ["first line", "second", "third"])
        for line in logged {
            #expect(line.metadata["task_id"] == "42")
            #expect(line.metadata["task_type"] == "shell")
            #expect(line.metadata["correlation_id"] == "c-1")
            #expect(line.metadata["stream"] == "stderr")
        }
    }

    @Test("output past the budget is dropped and counted in one closing warning")
    func budgetBoundsTheLog() {
        let capture = Capture()
        let log = OutputLog(logger: logger(capture), budget: 10)
        var lines = OutputLog.Lines(stream: "stdout")
        feed("12345\n6789\nthis one does not fit\nnor this\n", into: &lines, log: log)
        lines.finish(into: log)
        log.close()
        let logged = capture.lines.withLock { $0 }
        #expect(logged.map(\.message).prefix(2) == ["12345", "6789"])
        #expect(logged.count == 3)
        #expect(logged.last?.level == .warning)
        #expect(logged.last?.metadata["dropped_lines"] == "2")
        #expect(logged.last?.metadata["dropped_bytes"] == "29")
    }
}
