import Foundation

/// What the whole machine did in one second of the run, from `/proc/stat`: how busy its CPUs were and
/// how much of their time the hypervisor took away (steal). The report names these as causes of a slow
/// second, so that a spike the broker did not cause can be told from one it did.
struct MachineSecond: Sendable, Codable, Equatable {
    /// CPU time spent on anything but idle and I/O wait, steal included, in % of all CPUs.
    var busyPercent: Double
    /// CPU time the hypervisor gave to other guests, in % of all CPUs.
    var stealPercent: Double
}

/// Reads `/proc/stat`'s first line between two calls; nil where it cannot be read (not Linux).
struct MachineCounters: Sendable {
    private var last: [UInt64]?

    init() { last = Self.read() }

    /// The second since the previous call.
    mutating func next() -> MachineSecond? {
        guard let now = Self.read() else { return nil }
        defer { last = now }
        guard let last else { return nil }
        return Self.second(from: last, to: now)
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

    private static func read() -> [UInt64]? {
        (try? String(contentsOfFile: "/proc/stat", encoding: .utf8)).flatMap(parse)
    }
}
