import ConveyorRedis
import Foundation
import Logging

/// A throwaway `redis-server` in a temp folder on a free loopback port, started from the machine's own
/// binary. For `conveyor dev` and the integration tests; not for production.
public final class LocalRedisServer: Sendable {
    public let port: Int
    public let directory: String
    private let process: ChildProcess
    public var url: String { "redis://127.0.0.1:\(port)/0" }

    /// - Parameter appendOnly: AOF with fsync every second (what `conveyor dev` uses); off for tests.
    /// - Parameter port: a fixed port (to restart a server where it was); nil picks a free one.
    /// - Parameter extraArguments: more `redis-server` options (a cluster node's).
    public static func start(
        appendOnly: Bool = false, port fixedPort: Int? = nil, directory fixedDirectory: String? = nil, extraArguments: [String] = [],
        logger: Logger
    ) async throws -> LocalRedisServer {
        guard let binary = LocalProcess.find(["redis-server", "/usr/bin/redis-server"]) else {
            throw LocalServerError("redis-server not found: install it with `apt-get install -y redis-server`")
        }
        let directory: String
        if let fixedDirectory {
            directory = fixedDirectory
        } else {
            directory = try await LocalProcess.makeDirectory(prefix: "conveyor-redis", ownedByPostgres: false)
        }
        var lastError: (any Error)?
        // A restart on a fixed port may find it briefly taken ("bind: Address already in use" in CI, when
        // ports still came from the ephemeral range; `LocalProcess.freePort` now avoids that range but
        // falls back to it), so its attempts are spread over a few seconds; a free port is picked again.
        for attempt in 0..<(fixedPort == nil ? 5 : 25) {
            if fixedPort != nil, attempt > 0 { try await Task.sleep(for: .milliseconds(200)) }
            let port = try fixedPort ?? LocalProcess.freePort()
            let process = try await ChildProcess.start(executable: binary, arguments: [
                "--port", String(port), "--bind", "127.0.0.1", "--dir", directory, "--save", "",
                "--appendonly", appendOnly ? "yes" : "no", "--appendfsync", "everysec",
                "--maxmemory-policy", "noeviction", "--logfile", "\(directory)/redis.log", "--daemonize", "no",
            ] + extraArguments, workingDirectory: directory, logPath: "\(directory)/redis.out")
            let server = LocalRedisServer(port: port, directory: directory, process: process)
            do {
                try await server.waitUntilReady(logger: logger)
                return server
            } catch {
                lastError = error
                await server.stop(removeDirectory: false)
            }
        }
        throw LocalServerError("redis-server did not start: \(lastError.map { "\($0)" } ?? "unknown")")
    }

    private init(port: Int, directory: String, process: ChildProcess) {
        self.port = port
        self.directory = directory
        self.process = process
    }

    private func waitUntilReady(logger: Logger) async throws {
        // Refused connections are expected while the server starts: probe quietly.
        let quiet = Logger(label: "conveyor.embedded", factory: { _ in SwiftLogNoOpLogHandler() })
        let connection = RedisConnection(configuration: RedisConfiguration(port: port), name: "redis-probe", logger: quiet)
        defer { connection.close() }
        for _ in 0..<100 {
            if !process.isRunning { throw LocalServerError("redis-server exited at start; see \(directory)/redis.log") }
            if (try? await connection.send(RedisCommand("PING")))?.string == "PONG" { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw LocalServerError("redis-server did not answer PING within 5 s")
    }

    /// The server's process id.
    public var pid: Int32 { process.pid }

    /// Whether the server process still runs (a killed one is reaped here, not left a zombie).
    public var isRunning: Bool { process.isRunning }

    /// Sends SIGKILL: for tests of what a crash costs.
    public func kill() {
        if process.isRunning { process.signal(SIGKILL) }
    }

    /// Stops the server (SIGTERM, then SIGKILL after 5 s) and removes its folder.
    public func stop(removeDirectory: Bool = true) async {
        if process.isRunning {
            process.signal(SIGTERM)
            for _ in 0..<100 where process.isRunning {
                try? await Task.sleep(for: .milliseconds(50))
            }
            if process.isRunning { process.signal(SIGKILL) }
            for _ in 0..<20 where process.isRunning {
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        if removeDirectory { try? FileManager.default.removeItem(atPath: directory) }
    }
}
