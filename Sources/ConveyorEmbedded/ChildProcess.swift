import ConveyorCore
import Foundation
import Subprocess
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// A child process that outlives the call that started it (redis-server, postgres, a `conveyor`
/// coordinator or agent of a test or of the load generator), run by swift-subprocess.
///
/// swift-subprocess gives the child an empty signal mask and default signal dispositions (a process
/// spawned from a Swift concurrency thread would otherwise inherit one that blocks SIGTERM and SIGINT,
/// and redis-server never unblocks them), and reaps it. Each child gets a process group of its own, so
/// a Ctrl-C in the terminal does not reach the servers before our own graceful shutdown has drained
/// through them. `run` scopes a child to its body; a task of our own holds that scope open until the
/// child exits, which is what lets a server live on while the caller goes about its business.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    /// Fulfilled with the exit status once the child has exited and been reaped.
    private let exited: Promise<Int32>

    private init(pid: pid_t, exited: Promise<Int32>) {
        self.pid = pid
        self.exited = exited
    }

    /// Starts a child; returns once it runs.
    ///
    /// - Parameters:
    ///   - logPath: stdout and stderr are appended there; stdin is /dev/null.
    ///   - environment: variables set on top of this process's own environment.
    public static func start(
        executable: String, arguments: [String], workingDirectory: String?, logPath: String, environment: [String: String] = [:]
    ) async throws -> ChildProcess {
        let log: FileDescriptor
        do {
            log = try FileDescriptor.open(
                FilePath(logPath), .writeOnly, options: [.create, .append], permissions: [.ownerReadWrite, .groupRead, .otherRead])
        } catch {
            throw LocalServerError("cannot open \(logPath) for \(executable)'s output: \(error)")
        }
        var options = PlatformOptions()
        options.processGroupID = 0
        let variables = Dictionary(uniqueKeysWithValues: environment.map { (Environment.Key(stringLiteral: $0.key), Optional($0.value)) })
        let started = Promise<pid_t>()
        let exited = Promise<Int32>()
        // Holds run's scope open for the child's whole life: run returns once it has exited.
        Task {
            var code: Int32 = -1
            do {
                let result = try await run(
                    .path(FilePath(executable)), arguments: Arguments(arguments), environment: .inherit.updating(variables),
                    workingDirectory: workingDirectory.map { FilePath($0) }, platformOptions: options,
                    input: .none, output: .fileDescriptor(log, closeAfterSpawningProcess: false),
                    error: .fileDescriptor(log, closeAfterSpawningProcess: false)
                ) { execution in
                    // The child has its own copy of the descriptor by now.
                    try? log.close()
                    started.succeed(execution.processIdentifier.value)
                }
                // As a shell reports it: the exit code, or 128 + the signal.
                switch result.terminationStatus {
                case .exited(let exitCode): code = Int32(exitCode)
                case .signaled(let signal): code = 128 + Int32(signal)
                }
            } catch {
                // The body closes it once the child runs; a failure after that must not close it again.
                if !started.isFulfilled { try? log.close() }
                started.fail(LocalServerError("cannot start \(executable): \(error)"))
            }
            exited.succeed(code)
        }
        return ChildProcess(pid: try await started.value, exited: exited)
    }

    /// Whether the child still runs.
    public var isRunning: Bool {
        !exited.isFulfilled
    }

    /// Waits until the child exits; returns its exit status (128 + the signal when one ended it).
    public func waitForExit() async -> Int32 {
        (try? await exited.value) ?? -1
    }

    public func signal(_ signal: Int32) {
        guard isRunning else { return }
        _ = kill(pid, signal)
    }
}
