import ConveyorMetricNames
import Foundation
import Metrics
import Prometheus
import Synchronization

/// The standard `process_*` metrics, read from /proc at scrape time (Linux).
enum ProcessMetrics {
    /// CPU time is a counter, which swift-metrics cannot set: it is kept on the registry directly and
    /// advanced by the CPU time used since the previous scrape.
    private static let cpuSeen = Mutex<Double>(0)
    private static let resident = Gauge(label: MetricsCatalog.processResident.name)
    private static let openFDs = Gauge(label: MetricsCatalog.processOpenFDs.name)
    private static let start = Gauge(label: MetricsCatalog.processStart.name)

    static func sample(_ registry: PrometheusCollectorRegistry) {
        let cpu = registry.makeCounter(descriptor: MetricNameDescriptor(
            metricName: MetricsCatalog.processCPU.name, unitName: "", helpText: MetricsCatalog.processCPU.help), labels: [])
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        if let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        {
            // Fields after "(comm)": state is field 3; utime 14, stime 15, starttime 22 (1-based).
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 19, let user = Double(fields[11]), let system = Double(fields[12]), let started = Double(fields[19]) {
                let total = (user + system) / ticks
                let delta = cpuSeen.withLock { seen -> Double in
                    defer { seen = max(seen, total) }
                    return max(0, total - seen)
                }
                if delta > 0 { cpu.increment(by: delta) }
                start.record(bootTime() + started / ticks)
            }
        }
        if let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) {
            let pages = statm.split(separator: " ")
            if pages.count > 1, let residentPages = Double(pages[1]) {
                resident.record(residentPages * Double(sysconf(Int32(_SC_PAGESIZE))))
            }
        }
        if let descriptors = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            openFDs.record(Double(descriptors.count))
        }
    }

    private static func bootTime() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return 0 }
        let line = text.split(separator: "\n").first { $0.hasPrefix("btime ") }
        return line.flatMap { Double($0.dropFirst(6).trimmingCharacters(in: .whitespaces)) } ?? 0
    }
}
