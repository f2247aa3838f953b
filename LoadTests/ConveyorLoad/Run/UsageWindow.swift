import ConveyorCore

/// One process's CPU and memory readings over the load: the first and the latest, and the most memory
/// seen. ``ProcessSampler`` feeds it from /proc, ``CoordinatorProcessProbe`` from /metrics.
struct UsageWindow: Sendable {
    private var first: (at: ContinuousClock.Instant, cpuSeconds: Double)?
    private var last: (at: ContinuousClock.Instant, cpuSeconds: Double, residentMiB: Double)?
    private var peakMiB = 0.0
    /// CPU of the processes this name had before a restart, so the average spans them all.
    private var cpuOfEarlierProcesses = 0.0
    private var pid: Int32?

    /// - Parameter pid: the process read; a new one under the same name (a restarted agent) continues
    ///   the CPU count from where the old one ended.
    mutating func record(at instant: ContinuousClock.Instant, cpuSeconds: Double, residentMiB: Double, pid: Int32? = nil) {
        if let pid, let previous = self.pid, pid != previous, let last { cpuOfEarlierProcesses = last.cpuSeconds }
        if let pid { self.pid = pid }
        let cpuSeconds = cpuSeconds + cpuOfEarlierProcesses
        if first == nil { first = (instant, cpuSeconds) }
        last = (instant, cpuSeconds, residentMiB)
        peakMiB = max(peakMiB, residentMiB)
    }

    /// Average CPU between the first and the latest reading; nil before any reading.
    func usage(name: String) -> ProcessUsage? {
        guard let first, let last else { return nil }
        let wall = (last.at - first.at).seconds
        return ProcessUsage(
            name: name, cpuPercent: wall > 0 ? (last.cpuSeconds - first.cpuSeconds) / wall * 100 : 0,
            residentMiB: last.residentMiB, peakResidentMiB: peakMiB)
    }
}
