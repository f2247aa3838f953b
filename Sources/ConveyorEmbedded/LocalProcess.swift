import Foundation

/// Helpers for starting the machine's own `redis-server` and PostgreSQL binaries.
public enum LocalProcess {
    /// Runs a command to completion without blocking the cooperative pool and returns its exit status
    /// and combined output.
    ///
    /// Output goes through a temp file, not a pipe: `pg_ctl start` leaves a daemon that inherits the
    /// output descriptor, and reading a pipe to its end would then wait for the daemon to exit.
    static func run(_ executable: String, _ arguments: [String], workingDirectory: String? = nil) async throws -> (status: Int32, output: String) {
        let outputPath = "\(ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp")/conveyor-cmd-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let process = try await ChildProcess.start(executable: executable, arguments: arguments, workingDirectory: workingDirectory, logPath: outputPath)
        let status = await process.waitForExit()
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        return (status, text)
    }

    /// The first of `names` found on PATH (or as an absolute path).
    static func find(_ names: [String]) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for name in names {
            if name.hasPrefix("/") {
                if FileManager.default.isExecutableFile(atPath: name) { return name }
                continue
            }
            for directory in path.split(separator: ":") {
                let candidate = "\(directory)/\(name)"
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            }
        }
        return nil
    }

    /// A TCP port that was free on 127.0.0.1 a moment ago.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LocalServerError("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else { throw LocalServerError("bind() failed") }
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw LocalServerError("getsockname() failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static var isRoot: Bool { geteuid() == 0 }

    /// A fresh directory under the system temp folder; when running as root it is handed to the
    /// `postgres` user, because PostgreSQL refuses to run as root.
    public static func makeDirectory(prefix: String, ownedByPostgres: Bool) async throws -> String {
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        let path = "\(base)/\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        if ownedByPostgres && isRoot {
            let chown = try await run("/bin/chown", ["postgres:postgres", path])
            guard chown.status == 0 else { throw LocalServerError("cannot hand \(path) to the postgres user: \(chown.output)") }
        }
        return path
    }
}

/// Why a throwaway server could not be started or stopped.
public struct LocalServerError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}
