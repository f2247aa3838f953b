import ConveyorCore
import Foundation
import Subprocess
#if canImport(System)
import System
#else
import SystemPackage
#endif

/// `command`: runs an executable per task.
///
/// The process gets the agent's environment plus `TASK_ID`, `TASK_TYPE`, `TASK_ATTEMPT`, `CORRELATION_ID`
/// and `PAYLOAD_JSON` (the params). Exit 0 succeeds; its stdout, if not empty, must be JSON and becomes
/// the result (at most `max_output_bytes`). Any other exit fails the attempt with the tail of stderr;
/// exit ``permanentFailureExitCode`` fails it without retry. When the attempt is stopped (timeout or
/// shutdown) the process gets SIGTERM, then SIGKILL after ``terminationGracePeriod``.
public struct CommandHandler: TaskHandler {
    public var executable: String
    public var arguments: [String]
    public var maxOutputBytes: Int

    /// Exit with this code to say "do not retry" (EX_DATAERR from sysexits.h: the input was bad).
    public static let permanentFailureExitCode: Int32 = 65
    public static let terminationGracePeriod = Duration.seconds(5)
    /// How much of stderr a failure keeps.
    public static let stderrTailBytes = 2048

    public init(command: [String], maxOutputBytes: Int) {
        self.executable = command.first ?? ""
        self.arguments = Array(command.dropFirst())
        self.maxOutputBytes = maxOutputBytes
    }

    public func handle(_ task: TaskContext) async throws -> JSONValue? {
        var options = PlatformOptions()
        options.teardownSequence = [.gracefulShutDown(allowedDurationToNextStep: Self.terminationGracePeriod)]
        let environment = Environment.inherit.updating([
            "TASK_ID": task.id.description,
            "TASK_TYPE": task.type,
            "TASK_ATTEMPT": String(task.attempt),
            "CORRELATION_ID": task.correlationID,
            "PAYLOAD_JSON": task.paramsJSON,
        ])
        let executable: Executable = executable.contains("/") ? .path(FilePath(executable)) : .name(executable)
        let limit = maxOutputBytes
        let outcome: ExecutionResult<CapturedOutput, SequenceOutput, SequenceOutput>
        do {
            outcome = try await run(
                executable, arguments: Arguments(arguments), environment: environment, platformOptions: options,
                input: .none, output: .sequence, error: .sequence
            ) { execution in
                try await Self.capture(execution.standardOutput, execution.standardError, limit: limit)
            }
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
    /// of stdout and the last ``stderrTailBytes`` of stderr.
    private static func capture(_ stdout: SubprocessOutputSequence, _ stderr: SubprocessOutputSequence, limit: Int) async throws -> CapturedOutput {
        async let output: ([UInt8], Bool) = {
            var bytes: [UInt8] = []
            var overflowed = false
            for try await buffer in stdout {
                buffer.withUnsafeBytes { raw in
                    if bytes.count + raw.count > limit {
                        overflowed = true
                        bytes.append(contentsOf: raw.prefix(max(0, limit - bytes.count)))
                    } else {
                        bytes.append(contentsOf: raw)
                    }
                }
            }
            return (bytes, overflowed)
        }()
        async let errors: [UInt8] = {
            var tail: [UInt8] = []
            for try await buffer in stderr {
                buffer.withUnsafeBytes { raw in tail.append(contentsOf: raw) }
                if tail.count > stderrTailBytes * 2 { tail.removeFirst(tail.count - stderrTailBytes) }
            }
            return Array(tail.suffix(stderrTailBytes))
        }()
        let (out, err) = try await (output, errors)
        var tail = String(decoding: err, as: UTF8.self)
        while let last = tail.last, last.isWhitespace { tail.removeLast() }
        return CapturedOutput(stdout: out.0, overflowed: out.1, stderrTail: tail)
    }
}
