import Foundation

/// What the whole machine did in one second of the run: how busy its CPUs were and how much of their
/// time the hypervisor took away (steal), from `/proc/stat`, and how often TCP waited out a loss, from
/// `/proc/net/netstat`. The report names these as causes of a slow second, so that a spike the broker
/// did not cause can be told from one it did.
struct MachineSecond: Sendable, Codable, Equatable {
    /// CPU time spent on anything but idle and I/O wait, steal included, in % of all CPUs.
    var busyPercent: Double
    /// CPU time the hypervisor gave to other guests, in % of all CPUs.
    var stealPercent: Double
    /// TCP retransmission timeouts and connection attempts dropped by a full listen queue, on any
    /// connection of the machine (loopback included): each means a wait of at least Linux' minimum
    /// retransmission timeout (200 ms; 1 s for a dropped SYN). Tail loss probes, most of the machine's
    /// retransmitted segments, are not counted: a probe is sent after a few milliseconds without an
    /// ACK and costs nothing like that.
    var tcpTimeouts: UInt64 = 0
}

/// Reads `/proc/stat`'s first line and `/proc/net/netstat`'s TCP counters between two calls; nil where
/// they cannot be read (not Linux).
struct MachineCounters: Sendable {
    private var last: [UInt64]?
    private var lastTimeouts: UInt64?

    init() {
        last = Self.read()
        lastTimeouts = Self.readTimeouts()
    }

    /// The second since the previous call.
    mutating func next() -> MachineSecond? {
        guard let now = Self.read() else { return nil }
        let timeouts = Self.readTimeouts()
        defer {
            last = now
            lastTimeouts = timeouts
        }
        guard let last, var second = Self.second(from: last, to: now) else { return nil }
        if let timeouts, let lastTimeouts { second.tcpTimeouts = timeouts &- lastTimeouts }
        return second
    }

    /// user nice system idle iowait irq softirq steal (guest time is already inside user and nice).
    static func second(from before: [UInt64], to after: [UInt64]) -> MachineSecond? {
        guard before.count >= 8, after.count >= 8 else { return nil }
        let delta = (0..<8).map { after[$0] &- before[$0] }
        let total = Double(delta.reduce(0, +))
        guard total > 0 else { return nil }
        let idle = Double(delta[3] + delta[4])
        return MachineSecond(busyPercent: (total - idle) / total * 100, stealPercent: Double(delta[7]) / total * 100)
    }

    static func parse(_ text: String) -> [UInt64]? {
        guard let line = text.split(separator: "\n").first, line.hasPrefix("cpu ") else { return nil }
        let fields = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
        return fields.count >= 8 ? Array(fields.prefix(8)) : nil
    }

    /// `TCPTimeouts` plus `ListenDrops` from `/proc/net/netstat`: its `TcpExt:` lines are the counters'
    /// names, then their values.
    static func timeouts(_ text: String) -> UInt64? {
        let lines = text.split(separator: "\n").filter { $0.hasPrefix("TcpExt:") }
        guard lines.count >= 2 else { return nil }
        let names = lines[0].split(separator: " ")
        let values = lines[1].split(separator: " ")
        var sum: UInt64 = 0
        for name in ["TCPTimeouts", "ListenDrops"] {
            guard let index = names.firstIndex(of: Substring(name)), index < values.count, let value = UInt64(values[index]) else { return nil }
            sum &+= value
        }
        return sum
    }

    private static func read() -> [UInt64]? {
        (try? String(contentsOfFile: "/proc/stat", encoding: .utf8)).flatMap(parse)
    }

    private static func readTimeouts() -> UInt64? {
        (try? String(contentsOfFile: "/proc/net/netstat", encoding: .utf8)).flatMap(timeouts)
    }
}
