import ConveyorPostgres
import Foundation
import Logging

/// A throwaway PostgreSQL cluster in a temp folder on a free loopback port, from the machine's own
/// binaries, with a `conveyor` database. When the process runs as root (CI), `initdb` and the server run
/// as the `postgres` system user, since PostgreSQL refuses to run as root.
public final class LocalPostgresServer: Sendable {
    public let port: Int
    public let directory: String
    private let binDirectory: String
    public let database: String
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
        var settings = "-c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=256MB"
        if !durable { settings += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off" }
        var lastOutput = ""
        for _ in 0..<5 {
            let port = try LocalProcess.freePort()
            let start = try await runAsPostgres("\(binDirectory)/pg_ctl", [
                "-D", "\(directory)/data", "-l", "\(directory)/postgres.log", "-w", "-t", "30",
                "-o", "-p \(port) -k \(directory) \(settings)", "start",
            ], in: directory)
            if start.status == 0 {
                let server = LocalPostgresServer(port: port, directory: directory, binDirectory: binDirectory, database: database)
                try await server.createDatabase(logger: logger)
                return server
            }
            lastOutput = start.output
        }
        try? FileManager.default.removeItem(atPath: directory)
        throw LocalServerError("PostgreSQL did not start: \(lastOutput.suffix(500))")
    }

    private init(port: Int, directory: String, binDirectory: String, database: String) {
        self.port = port
        self.directory = directory
        self.binDirectory = binDirectory
        self.database = database
    }

    private func createDatabase(logger: Logger) async throws {
        let connection = PostgresConnection(url: "postgres://postgres@127.0.0.1:\(port)/postgres", name: "pg-setup", logger: logger)
        defer { connection.close() }
        let database = self.database
        try await connection.withSession { session in
            try session.execute("CREATE DATABASE \"\(database)\"", name: "create database")
        }
    }

    /// Restarts the server on the same port and data (for outage tests).
    public func restart() async throws {
        let result = try await Self.runAsPostgres("\(binDirectory)/pg_ctl", ["-D", "\(directory)/data", "-m", "fast", "-w", "restart"], in: directory)
        guard result.status == 0 else { throw LocalServerError("pg_ctl restart failed: \(result.output.suffix(500))") }
    }

    /// Stops the server (fast shutdown) and removes its folder.
    public func stop(removeDirectory: Bool = true) async {
        _ = try? await Self.runAsPostgres("\(binDirectory)/pg_ctl", ["-D", "\(directory)/data", "-m", "fast", "-w", "-t", "30", "stop"], in: directory)
        if removeDirectory { try? FileManager.default.removeItem(atPath: directory) }
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
