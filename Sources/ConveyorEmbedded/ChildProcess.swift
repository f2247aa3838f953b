import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A long-running child server process (redis-server, postgres), started with `posix_spawn`.
///
/// Why not Foundation's `Process`: a process spawned from a Swift concurrency thread inherits that
/// thread's signal mask, which blocks SIGTERM and SIGINT, and redis-server never unblocks them; and it
/// stays in our process group, so a Ctrl-C in the terminal would reach the servers before our own
/// graceful shutdown has drained through them. Here the child gets an empty signal mask, default signal
/// dispositions, and a process group of its own.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    private let exitStatus = Mutex<Int32?>(nil)

    /// - Parameters:
    ///   - logPath: stdout and stderr are appended there; stdin is /dev/null.
    ///   - environment: variables set on top of this process's own environment.
    public init(executable: String, arguments: [String], workingDirectory: String?, logPath: String, environment: [String: String] = [:]) throws {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Glibc's addchdir_np is not visible from Swift: change directory in a shell that then execs.
        var program = executable
        var words = [executable] + arguments
        if let workingDirectory {
            program = "/bin/sh"
            words = ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", workingDirectory, executable] + arguments
        }
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var variables = ProcessInfo.processInfo.environment
        variables.merge(environment) { _, new in new }
        let envp: [UnsafeMutablePointer<CChar>?] = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in envp { free(pointer) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, program, &actions, &attributes, argv, envp)
        guard status == 0 else {
            throw LocalServerError("cannot start \(executable): \(String(cString: strerror(status)))")
        }
        self.pid = pid
    }

    /// Whether the child still runs; reaps it once it has exited.
    public var isRunning: Bool {
        exitStatus.withLock { exitStatus in
            if exitStatus != nil { return false }
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == 0 { return true }
            if result == pid {
                // WIFEXITED: the exit code; otherwise 128 + the signal, as a shell reports it.
                exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
                return false
            }
            // Already reaped elsewhere, or not our child any more: ask the kernel.
            return kill(pid, 0) == 0
        }
    }

    /// Waits (polling, without blocking a thread) until the child exits; returns its exit status.
    ///
    /// Why polling rather than Foundation's `Process.terminationHandler`: that handler was seen never to
    /// fire for a short-lived `initdb`, leaving `conveyor-load` waiting forever.
    /// Returns -1 when cancelled first (the child is left running) or when it was reaped elsewhere.
    public func waitForExit() async -> Int32 {
        while isRunning {
            if Task.isCancelled { return -1 }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return exitStatus.withLock { $0 } ?? -1
    }

    public func signal(_ signal: Int32) {
        _ = kill(pid, signal)
    }
}
