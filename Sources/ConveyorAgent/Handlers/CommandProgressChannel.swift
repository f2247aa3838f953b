import ConveyorCore
import Foundation
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How a command reports progress: JSON lines appended to the file `CONVEYOR_PROGRESS_FILE` names,
/// for example `echo '{"fraction": 0.5, "message": "halfway"}' >> "$CONVEYOR_PROGRESS_FILE"`.
///
/// Why a file of its own rather than stdout or stderr: stdout is the result and stderr the log, and a
/// file needs nothing of the command but an append, in any language. The agent reads what was added
/// every ``pollInterval`` while the command runs, and once more after it exits, so the last line is
/// never lost; a line that is not a valid report is logged (the first few) and skipped.
final class CommandProgressChannel: Sendable {
    private struct Reader {
        var descriptor: Int32
        var partial: [UInt8] = []
        var refused = 0
    }

    let path: String
    private let reader: Mutex<Reader>
    private let report: @Sendable (TaskProgress) -> Void
    private let logger: Logger

    static let environmentVariable = "CONVEYOR_PROGRESS_FILE"
    static let pollInterval = Duration.milliseconds(200)
    /// The longest line read as a report; a longer one is skipped.
    static let maximumLineBytes = 8 * 1024
    static let loggedRefusals = 3

    init(_ task: TaskContext, directory: String = NSTemporaryDirectory()) throws {
        let name = "conveyor-progress-\(task.id)-\(task.attempt)-\(UUID().uuidString).jsonl"
        path = (directory as NSString).appendingPathComponent(name)
        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw TaskFailure("cannot create the progress file \(path)")
        }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            try? FileManager.default.removeItem(atPath: path)
            throw TaskFailure("cannot open the progress file \(path)")
        }
        reader = Mutex(Reader(descriptor: descriptor))
        report = { progress in task.reportProgress(progress) }
        logger = task.logger
    }

    /// Reads what was appended every ``pollInterval`` until cancelled.
    func follow() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.pollInterval)
            readAppended()
        }
    }

    /// Reports every complete line added since the last read; `atEnd` (the command has exited) also
    /// takes a last line that lacks its newline.
    func readAppended(atEnd: Bool = false) {
        let (reports, refusals) = reader.withLock { reader -> ([TaskProgress], [String]) in
            var buffer = [UInt8](repeating: 0, count: 16 * 1024)
            var reports: [TaskProgress] = []
            var refusals: [String] = []
            func refuse(_ why: String) {
                reader.refused += 1
                if reader.refused <= Self.loggedRefusals { refusals.append(why) }
            }
            func takeLines() {
                while let newline = reader.partial.firstIndex(of: UInt8(ascii: "\n")) {
                    switch Self.parse(reader.partial[..<newline]) {
                    case .none: break
                    case .report(let progress)?: reports.append(progress)
                    case .refused(let why)?: refuse(why)
                    }
                    reader.partial.removeSubrange(...newline)
                }
                if reader.partial.count > Self.maximumLineBytes {
                    reader.partial.removeAll()
                    refuse("a line longer than \(Self.maximumLineBytes) bytes")
                }
            }
            while reader.descriptor >= 0 {
                let count = buffer.withUnsafeMutableBytes { read(reader.descriptor, $0.baseAddress, $0.count) }
                guard count > 0 else { break }
                reader.partial.append(contentsOf: buffer[0..<count])
                takeLines()
            }
            if atEnd, !reader.partial.isEmpty {
                reader.partial.append(UInt8(ascii: "\n"))
                takeLines()
            }
            return (reports, refusals)
        }
        for why in refusals {
            logger.warning("ignoring a progress line", metadata: ["reason": "\(why)", "file": "\(Self.environmentVariable)"])
        }
        // Only the newest matters: the throttle keeps one per attempt anyway.
        if let last = reports.last { report(last) }
    }

    enum Line {
        case report(TaskProgress)
        case refused(String)
    }

    /// One line: a report, a refusal, or nil for a blank line.
    static func parse(_ line: ArraySlice<UInt8>) -> Line? {
        let text = String(decoding: line, as: UTF8.self)
        guard !text.allSatisfy(\.isWhitespace) else { return nil }
        guard let json = try? JSONValue.parse(text) else { return .refused("not JSON: \(text.prefix(100))") }
        do {
            return .report(try TaskProgress(json: json))
        } catch {
            return .refused(error.message)
        }
    }

    /// Closes and removes the file.
    func remove() {
        reader.withLock { reader in
            if reader.descriptor >= 0 { close(reader.descriptor) }
            reader.descriptor = -1
        }
        try? FileManager.default.removeItem(atPath: path)
    }
}
