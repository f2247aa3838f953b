import ConveyorPostgres
import Foundation
import Logging

/// A throwaway PostgreSQL cluster in a temp folder on a free loopback port, from the machine's own
/// binaries, with a `conveyor` database. When the process runs as root (CI), `initdb` and the server run
/// as the `postgres` system user, since PostgreSQL refuses to run as root.
///
/// The server runs as a child process (``ChildProcess``), not daemonized by `pg_ctl start`: a daemon
/// would inherit the descriptors Foundation uses to notice that a child exited, and then no exit is ever
/// reported.
public final class LocalPostgresServer: Sendable {
    public let port: Int
    public let directory: String
    public let database: String
    private let binDirectory: String
    private let settings: [String]
    private let process: Mutex<ChildProcess?>
    public var url: String { "postgres://postgres@127.0.0.1:\(port)/\(database)" }

    /// - Parameter durable: false turns fsync and synchronous commit off (tests only: a crash of the
    ///   machine could lose commits).
    public static func start(durable: Bool, database: String = "conveyor", logger: Logger) async throws -> LocalPostgresServer {
        guard let binDirectory = findBinDirectory() else {
            throw LocalServerError("PostgreSQL server binaries not found: install them with `apt-get install -y postgresql`")
        }
        let directory = try await LocalProcess.makeDirectory(prefix: "conveyor-pg", ownedByPostgres: true)
        let initdb = try await runAsPostgres("\(binDirectory)/initdb", ["-D", "\(directory)/data", "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale"], in: directory)
        guard initdb.status == 0 else {
            try? FileManager.default.removeItem(atPath: directory)
            throw LocalServerError("initdb failed: \(initdb.output.suffix(500))")
        }
        // The test process runs dozens of coordinators at once, each with its pool, the Reconciler's
        // lock, the maintenance connection and the LISTEN one (500 ran out once issue 15's tests came).
        var settings = ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=1000", "-c", "shared_buffers=256MB", "-k", directory]
        if !durable { settings += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"] }
        var lastError = ""
        for _ in 0..<5 {
            let port = try LocalProcess.freePort()
            let server = LocalPostgresServer(port: port, directory: directory, binDirectory: binDirectory, database: database, settings: settings)
            do {
                try await server.spawn()
                try await server.waitUntilReady(logger: logger)
                try await server.createDatabase(logger: logger)
                return server
            } catch {
                lastError = "\(error)"
                await server.stop(removeDirectory: false)
            }
        }
        try? FileManager.default.removeItem(atPath: directory)
        throw LocalServerError("PostgreSQL did not start: \(lastError)")
    }

    private init(port: Int, directory: String, binDirectory: String, database: String, settings: [String]) {
        self.port = port
        self.directory = directory
        self.binDirectory = binDirectory
        self.database = database
        self.settings = settings
        self.process = Mutex(nil)
    }

    private func spawn() async throws {
        let postgres = "\(binDirectory)/postgres"
        let arguments = ["-D", "\(directory)/data", "-p", String(port)] + settings
        let process: ChildProcess
        if LocalProcess.isRoot {
            guard let runuser = LocalProcess.find(["runuser", "/usr/sbin/runuser", "/sbin/runuser"]) else {
                throw LocalServerError("running as root needs `runuser` to start PostgreSQL as the postgres user")
            }
            process = try await ChildProcess.start(executable: runuser, arguments: ["-u", "postgres", "--", postgres] + arguments, workingDirectory: directory, logPath: "\(directory)/postgres.log")
        } else {
            process = try await ChildProcess.start(executable: postgres, arguments: arguments, workingDirectory: directory, logPath: "\(directory)/postgres.log")
        }
        self.process.withLock { $0 = process }
    }

    private func waitUntilReady(logger: Logger) async throws {
        let connection = PostgresConnection(url: "postgres://postgres@127.0.0.1:\(port)/postgres", name: "pg-probe", logger: Logger(label: "conveyor.embedded", factory: { _ in SwiftLogNoOpLogHandler() }))
        defer { connection.close() }
        for _ in 0..<300 {
            if let process = process.withLock({ $0 }), !process.isRunning {
                let log = (try? String(contentsOfFile: "\(directory)/postgres.log", encoding: .utf8)) ?? ""
                throw LocalServerError("postgres exited at start: \(log.suffix(400))")
            }
            if (try? await connection.withSession { session in try session.query("SELECT 1").rows.count }) == 1 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw LocalServerError("PostgreSQL did not accept connections within 30 s")
    }

    private func createDatabase(logger: Logger) async throws {
        let connection = PostgresConnection(url: "postgres://postgres@127.0.0.1:\(port)/postgres", name: "pg-setup", statementTimeout: .seconds(120), logger: logger)
        defer { connection.close() }
        let database = self.database
        try await connection.withSession { session in
            try session.execute("CREATE DATABASE \"\(database)\"", name: "create database")
        }
    }

    /// Restarts the server on the same port and data (for outage tests).
    public func restart(logger: Logger) async throws {
        await stop(removeDirectory: false)
        try await start(logger: logger)
    }

    /// Stops the server as a crash would (`pg_ctl -m immediate`: no checkpoint; WAL recovery at the next
    /// start), keeping its data.
    public func crash() async {
        _ = try? await Self.runAsPostgres("\(binDirectory)/pg_ctl", ["-D", "\(directory)/data", "-m", "immediate", "-w", "-t", "30", "stop"], in: directory)
    }

    /// Starts a stopped server again on its port and data.
    public func start(logger: Logger) async throws {
        try await spawn()
        try await waitUntilReady(logger: logger)
    }

    /// Stops the server (fast shutdown: sessions are disconnected, committed data is safe) and removes
    /// its folder.
    public func stop(removeDirectory: Bool = true) async {
        _ = try? await Self.runAsPostgres("\(binDirectory)/pg_ctl", ["-D", "\(directory)/data", "-m", "fast", "-w", "-t", "30", "stop"], in: directory)
        if let process = process.withLock({ $0 }) {
            for _ in 0..<100 where process.isRunning {
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        if removeDirectory { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// A shell command that stops the server at once and removes its folder, for clean-up at process
    /// exit, when nothing async can run any more.
    public var stopCommand: String {
        let pgCtl = "'\(binDirectory)/pg_ctl' -D '\(directory)/data' -m immediate -w stop >/dev/null 2>&1"
        let stop = LocalProcess.isRoot ? "runuser -u postgres -- \(pgCtl)" : pgCtl
        return "\(stop); rm -rf '\(directory)'"
    }

    private static func runAsPostgres(_ executable: String, _ arguments: [String], in directory: String) async throws -> (status: Int32, output: String) {
        if LocalProcess.isRoot {
            guard let runuser = LocalProcess.find(["runuser", "/usr/sbin/runuser", "/sbin/runuser"]) else {
                throw LocalServerError("running as root needs `runuser` to start PostgreSQL as the postgres user")
            }
            return try await LocalProcess.run(runuser, ["-u", "postgres", "--", executable] + arguments, workingDirectory: directory)
        }
        return try await LocalProcess.run(executable, arguments, workingDirectory: directory)
    }

    /// The newest `/usr/lib/postgresql/<version>/bin`, or the folder of `initdb` on PATH.
    static func findBinDirectory() -> String? {
        let root = "/usr/lib/postgresql"
        if let versions = try? FileManager.default.contentsOfDirectory(atPath: root) {
            for version in versions.sorted(by: { (Int($0) ?? 0) > (Int($1) ?? 0) }) {
                let bin = "\(root)/\(version)/bin"
                if FileManager.default.isExecutableFile(atPath: "\(bin)/initdb") { return bin }
            }
        }
        if let initdb = LocalProcess.find(["initdb"]) {
            return String(initdb.dropLast("/initdb".count))
        }
        return nil
    }
}

import Synchronization
