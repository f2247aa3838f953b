#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Freezes a server the way a hung host does: SIGSTOP to the process and every child it has, so its
/// sockets stay open and its kernel keeps accepting and acknowledging, but nothing answers. SIGCONT
/// brings it back. Used by the outage tests and the chaos run to prove that no wait is unbounded.
enum ProcessFreezer {
    /// `pid` and its children (PostgreSQL's backends), read from /proc.
    static func family(of pid: Int32) -> [Int32] {
        var pids = [pid]
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let child = Int32(entry),
                let status = try? String(contentsOfFile: "/proc/\(entry)/status", encoding: .utf8),
                let line = status.split(separator: "\n").first(where: { $0.hasPrefix("PPid:") }),
                Int32(line.dropFirst("PPid:".count).trimmingCharacters(in: .whitespaces)) == pid
            else { continue }
            pids.append(child)
        }
        return pids
    }

    /// The parent first: stopped, it forks no new child, so the scan after it finds every child. (Scanning
    /// first missed a backend forked during the scan, which then answered while "frozen".)
    static func freeze(_ pid: Int32) {
        _ = kill(pid, SIGSTOP)
        for member in family(of: pid) where member != pid { _ = kill(member, SIGSTOP) }
    }

    static func thaw(_ pid: Int32) {
        for member in family(of: pid) { _ = kill(member, SIGCONT) }
    }
}

extension LocalRedisServer {
    /// SIGSTOP: the server keeps its port but answers nothing until ``thaw()``.
    public func freeze() { ProcessFreezer.freeze(pid) }
    public func thaw() { ProcessFreezer.thaw(pid) }
}

extension LocalPostgresServer {
    /// The postmaster's pid, from `postmaster.pid` in the data folder.
    var postmasterPID: Int32? {
        guard let text = try? String(contentsOfFile: "\(directory)/data/postmaster.pid", encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first.flatMap { Int32($0) }
    }

    /// SIGSTOP to the postmaster and every backend: connections stay open, nothing answers until ``thaw()``.
    public func freeze() {
        if let pid = postmasterPID { ProcessFreezer.freeze(pid) }
    }

    public func thaw() {
        if let pid = postmasterPID { ProcessFreezer.thaw(pid) }
    }
}
