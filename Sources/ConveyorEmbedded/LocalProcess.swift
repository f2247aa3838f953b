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

    /// A TCP port that was free on 127.0.0.1 a moment ago, chosen below the kernel's ephemeral range.
    ///
    /// A port the kernel hands out for `bind(0)` lies in the range it also gives outgoing connections, so
    /// once its server stops (a test restarting a node), any client's new connection may take it as its
    /// local port and hold it for as long as it lives: seen in CI as a restarted `redis-server` failing
    /// with "Address already in use" for seconds on end. Ports below that range are never handed out that
    /// way; only when none is free there does this fall back to the kernel's choice.
    public static func freePort() throws -> Int {
        let lowest = 10_000
        let ephemeralStart = ephemeralPortRangeStart()
        if ephemeralStart - lowest >= 1_000 {
            var generator = SystemRandomNumberGenerator()
            for _ in 0..<200 {
                let candidate = Int.random(in: lowest..<ephemeralStart, using: &generator)
                if let port = try bindProbe(port: candidate) { return port }
            }
        }
        guard let port = try bindProbe(port: 0) else { throw LocalServerError("bind() failed") }
        return port
    }

    /// The first port of `/proc/sys/net/ipv4/ip_local_port_range` (Linux' default 32768 when unreadable).
    private static func ephemeralPortRangeStart() -> Int {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
        return text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.flatMap { Int($0) } ?? 32_768
    }

    /// Binds `port` on 127.0.0.1 (0: any) and closes it again: the port bound, or nil when it is taken.
    private static func bindProbe(port: Int) throws -> Int? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LocalServerError("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else { return nil }
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
