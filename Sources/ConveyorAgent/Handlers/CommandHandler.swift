import ConveyorCore
import Foundation
import Logging
import Subprocess
#if canImport(System)
import System
#else
import SystemPackage
#endif

/// `command`: runs an executable per task.
///
/// What the process sees, and nothing more (least privilege: never the agent's own secrets such as
/// `CONVEYOR_REDIS_URL`):
/// - environment: `PATH`, `HOME` and `LANG` from the agent, `TASK_ID`, `TASK_TYPE`, `TASK_ATTEMPT`,
///   `TASK_MAX_ATTEMPTS`, `CORRELATION_ID`, `PAYLOAD_FILE`, `CONVEYOR_PROGRESS_FILE` (append JSON lines
///   there to report progress, see ``CommandProgressChannel``), the type's own `env:` from the registry, and
///   `PAYLOAD_JSON` only when the params are at most ``payloadEnvironmentLimit`` bytes (a larger value
///   would make exec fail with E2BIG), and for a workflow node `CONVEYOR_DEPENDENCIES_FILE`: a file
///   (mode 0600, removed after the attempt) holding its dependencies' statuses and results by node key
///   as one JSON object (a file, because a join's may be megabytes);
/// - the params as JSON on standard input, read from the file `PAYLOAD_FILE` names (mode 0600, removed
///   after the attempt), so params up to the request body limit work.
///
/// Exit 0 succeeds; its stdout, if not empty, must be JSON and becomes the result (at most
/// `max_output_bytes`). Any other exit fails the attempt with the tail of stderr; exit
/// ``permanentFailureExitCode`` fails it without retry. When the attempt is stopped (timeout or shutdown)
/// the process gets SIGTERM, then SIGKILL after ``terminationGracePeriod``.
///
/// Both output streams also go to the agent's log, line by line, carrying the task's id, type and
/// correlation id; at most ``loggedBytesPerAttempt`` per attempt, the rest counted in one closing line.
public struct CommandHandler: TaskHandler {
    public var executable: String
    public var arguments: [String]
    public var maxOutputBytes: Int
    /// The type's `env:` from the registry.
    public var environment: [String: String]

    /// Exit with this code to say "do not retry" (EX_DATAERR from sysexits.h: the input was bad).
    public static let permanentFailureExitCode: Int32 = 65
    public static let terminationGracePeriod = Duration.seconds(5)
    /// How much of stderr a failure keeps.
    public static let stderrTailBytes = 2048
    /// Params up to this size are also in `PAYLOAD_JSON` (kept for commands written before stdin).
    public static let payloadEnvironmentLimit = 64 * 1024
    /// Output logged per attempt, both streams together.
    public static let loggedBytesPerAttempt = 64 * 1024
    /// The agent's variables a command inherits.
    public static let inheritedVariables = ["PATH", "HOME", "LANG"]

    public init(command: [String], maxOutputBytes: Int, environment: [String: String] = [:]) {
        self.executable = command.first ?? ""
        self.arguments = Array(command.dropFirst())
        self.maxOutputBytes = maxOutputBytes
        self.environment = environment
    }

    /// The whole environment of a task's process (see the type's documentation).
    /// Names the file with a workflow node's dependencies and their results.
    public static let dependenciesFileVariable = "CONVEYOR_DEPENDENCIES_FILE"

    static func environment(
        for task: TaskContext, payloadFile: String, progressFile: String? = nil, dependenciesFile: String? = nil, typeEnvironment: [String: String],
        agentEnvironment: [String: String] = ProcessInfo.processInfo.environment
    ) -> [String: String] {
        var variables: [String: String] = ["PATH": "/usr/local/bin:/usr/bin:/bin"]
        for name in inheritedVariables {
            if let value = agentEnvironment[name] { variables[name] = value }
        }
        variables.merge(typeEnvironment) { _, own in own }
        variables["TASK_ID"] = task.id.description
        variables["TASK_TYPE"] = task.type
        variables["TASK_ATTEMPT"] = String(task.attempt)
        variables["TASK_MAX_ATTEMPTS"] = String(task.maxAttempts)
        variables["CORRELATION_ID"] = task.correlationID
        variables["PAYLOAD_FILE"] = payloadFile
        if let progressFile { variables[CommandProgressChannel.environmentVariable] = progressFile }
        if let dependenciesFile { variables[dependenciesFileVariable] = dependenciesFile }
        if task.paramsJSON.utf8.count <= payloadEnvironmentLimit { variables["PAYLOAD_JSON"] = task.paramsJSON }
        return variables
    }

    public func handle(_ task: TaskContext) async throws -> JSONValue? {
        let payload = try PayloadFile(task, kind: "payload", contents: task.paramsJSON)
        defer { payload.remove() }
        let dependencies = try task.dependenciesJSON.map { try PayloadFile(task, kind: "dependencies", contents: $0) }
        defer { dependencies?.remove() }
        let progress = try CommandProgressChannel(task)
        defer { progress.remove() }
        var options = PlatformOptions()
        options.teardownSequence = [.gracefulShutDown(allowedDurationToNextStep: Self.terminationGracePeriod)]
        let variables = Self.environment(
            for: task, payloadFile: payload.path, progressFile: progress.path, dependenciesFile: dependencies?.path, typeEnvironment: environment)
        let environment = Environment.custom(Dictionary(uniqueKeysWithValues: variables.map { (Environment.Key(stringLiteral: $0.key), $0.value) }))
        let executable: Executable = executable.contains("/") ? .path(FilePath(executable)) : .name(executable)
        let limit = maxOutputBytes
        let logger = task.logger
        let outcome: ExecutionResult<CapturedOutput, SequenceOutput, SequenceOutput>
        do {
            let input = try FileDescriptor.open(FilePath(payload.path), .readOnly)
            outcome = try await run(
                executable, arguments: Arguments(arguments), environment: environment, platformOptions: options,
                input: .fileDescriptor(input, closeAfterSpawningProcess: true), output: .sequence, error: .sequence
            ) { execution in
                try await withThrowingTaskGroup(of: CapturedOutput?.self) { group in
                    group.addTask { try await Self.capture(execution.standardOutput, execution.standardError, limit: limit, logger: logger) }
                    group.addTask {
                        await progress.follow()
                        return nil
                    }
                    // Both pipes closed: the process is done writing; stop following the progress file.
                    guard let captured = try await group.next() ?? nil else { throw CancellationError() }
                    group.cancelAll()
                    return captured
                }
            }
            progress.readAppended(atEnd: true)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw TaskFailure("cannot run \(self.executable): \(error)")
        }
        let captured = outcome.closureResult
        switch outcome.terminationStatus {
        case .exited(0):
            if captured.overflowed {
                throw TaskFailure.permanent("stdout exceeded max_output_bytes (\(limit))")
            }
            let text = String(decoding: captured.stdout, as: UTF8.self)
            if text.allSatisfy(\.isWhitespace) { return nil }
            do {
                return try JSONValue.parse(Data(captured.stdout))
            } catch {
                throw TaskFailure.permanent("stdout is not JSON: \(text.prefix(200))")
            }
        case .exited(let code):
            let message = "exit code \(code): \(captured.stderrTail)"
            throw code == Self.permanentFailureExitCode ? TaskFailure.permanent(message) : TaskFailure(message)
        case .signaled(let signal):
            try Task.checkCancellation()
            throw TaskFailure("killed by signal \(signal): \(captured.stderrTail)")
        }
    }

    struct CapturedOutput: Sendable {
        var stdout: [UInt8] = []
        var overflowed = false
        var stderrTail = ""
    }

    /// Drains both pipes concurrently (a full pipe would stall the child), keeping at most `limit` bytes
    /// of stdout and the last ``stderrTailBytes`` of stderr, and logging both line by line.
    private static func capture(
        _ stdout: SubprocessOutputSequence, _ stderr: SubprocessOutputSequence, limit: Int, logger: Logger
    ) async throws -> CapturedOutput {
        let log = OutputLog(logger: logger, budget: loggedBytesPerAttempt)
        async let output: ([UInt8], Bool) = {
            var bytes: [UInt8] = []
            var overflowed = false
            var lines = OutputLog.Lines(stream: "stdout")
            for try await buffer in stdout {
                buffer.withUnsafeBytes { raw in
                    lines.feed(raw, into: log)
                    if bytes.count + raw.count > limit {
                        overflowed = true
                        bytes.append(contentsOf: raw.prefix(max(0, limit - bytes.count)))
                    } else {
                        bytes.append(contentsOf: raw)
                    }
                }
            }
            lines.finish(into: log)
            return (bytes, overflowed)
        }()
        async let errors: [UInt8] = {
            var tail: [UInt8] = []
            var lines = OutputLog.Lines(stream: "stderr")
            for try await buffer in stderr {
                buffer.withUnsafeBytes { raw in
                    lines.feed(raw, into: log)
                    tail.append(contentsOf: raw)
                }
                if tail.count > stderrTailBytes * 2 { tail.removeFirst(tail.count - stderrTailBytes) }
            }
            lines.finish(into: log)
            return Array(tail.suffix(stderrTailBytes))
        }()
        let (out, err) = try await (output, errors)
        log.close()
        var tail = String(decoding: err, as: UTF8.self)
        while let last = tail.last, last.isWhitespace { tail.removeLast() }
        return CapturedOutput(stdout: out.0, overflowed: out.1, stderrTail: tail)
    }
}

/// The params of one attempt in a file of their own: the command's standard input and `PAYLOAD_FILE`.
private struct PayloadFile {
    let path: String

    init(_ task: TaskContext, kind: String, contents: String) throws {
        let name = "conveyor-\(kind)-\(task.id)-\(task.attempt)-\(UUID().uuidString).json"
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent(name)
        guard FileManager.default.createFile(atPath: path, contents: Data(contents.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw TaskFailure("cannot write the \(kind) file \(path)")
        }
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
