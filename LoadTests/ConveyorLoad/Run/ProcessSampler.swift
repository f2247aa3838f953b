import Foundation
import Synchronization

/// A process whose CPU and memory the run reports.
struct WatchedProcess: Sendable {
    var name: String
    var pid: pid_t
    /// Add the process's children (PostgreSQL's backends, checkpointer, WAL writer).
    var includeChildren: Bool
}

/// CPU and resident memory of one watched process (with its children) over the load.
struct ProcessUsage: Sendable, Codable {
    var name: String
    /// Average CPU over the load, in percent of one core.
    var cpuPercent: Double
    /// Resident memory at the end of the load, and the most seen, in MiB. For a process with children it
    /// is the sum of their proportional set sizes (shared pages split between the processes sharing them),
    /// so PostgreSQL's shared buffers are counted once.
    var residentMiB: Double
    var peakResidentMiB: Double
    /// CPU per task finished during the load, in microseconds (set by ``LoadReport``, which knows how
    /// many finished).
    var cpuMicrosecondsPerTask: Double?
}

/// Reads `/proc` once a second: CPU time (utime + stime) and resident memory of each watched process.
final class ProcessSampler: Sendable {
    private struct Reading: Sendable {
        var cpuSeconds: Double
        var residentMiB: Double
    }

    /// Asked at every sample: a process restarted during the load is followed under its name.
    let processes: @Sendable () -> [WatchedProcess]
    private let windows = Mutex<[String: UsageWindow]>([:])
    private static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    init(processes: @escaping @Sendable () -> [WatchedProcess]) {
        self.processes = processes
    }

    /// Samples until cancelled.
    func run() async {
        sample()
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            sample()
        }
    }

    func sample() {
        let now = ContinuousClock.now
        let processes = self.processes()
        let childrenByParent = processes.contains(where: \.includeChildren) ? Self.children() : [:]
        for process in processes {
            var pids = [process.pid]
            if process.includeChildren { pids += childrenByParent[process.pid] ?? [] }
            // The parent also counts the CPU of children it has reaped (PostgreSQL's autovacuum workers and
            // closed backends), which would otherwise vanish from the sum between two samples.
            let readings = pids.compactMap { Self.read(pid: $0, proportional: process.includeChildren, reapedChildren: process.includeChildren && $0 == process.pid) }
            guard !readings.isEmpty else { continue }
            let reading = Reading(
                cpuSeconds: readings.reduce(0) { $0 + $1.cpuSeconds }, residentMiB: readings.reduce(0) { $0 + $1.residentMiB })
            windows.withLock { $0[process.name, default: UsageWindow()].record(at: now, cpuSeconds: reading.cpuSeconds, residentMiB: reading.residentMiB, pid: process.pid) }
        }
    }

    /// Usage from the first sample to the last.
    var usage: [ProcessUsage] {
        let processes = self.processes()
        return windows.withLock { windows in processes.compactMap { windows[$0.name]?.usage(name: $0.name) } }
    }

    /// Memory of a watched process now, or nil when gone: its resident set or, for a process with
    /// children (PostgreSQL), the proportional set size of their private mappings (each backend's own
    /// memory; pages still shared with the postmaster after fork are split between the sharers). Shared
    /// mappings are left out: they are shared buffers, which fill up to `shared_buffers` by design, and
    /// a soak's few minutes would read that as growth.
    static func growthMiB(of process: WatchedProcess) -> Double? {
        guard process.includeChildren else { return read(pid: process.pid, proportional: false, reapedChildren: false)?.residentMiB }
        let pids = [process.pid] + (children()[process.pid] ?? [])
        var kilobytes = 0.0
        var found = false
        for pid in pids {
            guard let text = try? String(contentsOfFile: "/proc/\(pid)/smaps", encoding: .utf8) else { continue }
            found = true
            var sharedMapping = false
            for line in text.split(separator: "\n") {
                if let first = line.first, first.isHexDigit, line.contains("-") {
                    // A mapping's header: "start-end perms offset dev inode [path]"; perms end in s or p.
                    let perms = line.split(separator: " ").dropFirst().first ?? ""
                    sharedMapping = perms.hasSuffix("s")
                } else if !sharedMapping, line.hasPrefix("Pss:") {
                    kilobytes += Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
                }
            }
        }
        return found ? kilobytes / 1024 : nil
    }

    /// CPU seconds and resident MiB of one process: RSS from `status`, or PSS from `smaps_rollup`.
    private static func read(pid: pid_t, proportional: Bool, reapedChildren: Bool) -> Reading? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after the command name: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 14, var user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        // cutime and cstime: CPU of the children this process has waited for.
        if reapedChildren, let childUser = Double(fields[13]), let childSystem = Double(fields[14]) { user += childUser + childSystem }
        let memoryFile = proportional ? "/proc/\(pid)/smaps_rollup" : "/proc/\(pid)/status"
        let key = proportional ? "Pss:" : "VmRSS:"
        var kilobytes = 0.0
        if let text = try? String(contentsOfFile: memoryFile, encoding: .utf8),
           let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key) }) {
            kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        return Reading(cpuSeconds: (user + system) / ticksPerSecond, residentMiB: kilobytes / 1024)
    }

    /// Every process's children, by parent pid.
    private static func children() -> [pid_t: [pid_t]] {
        var result: [pid_t: [pid_t]] = [:]
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = pid_t(entry), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let parent = pid_t(fields[1]) { result[parent, default: []].append(pid) }
        }
        return result
    }
}
