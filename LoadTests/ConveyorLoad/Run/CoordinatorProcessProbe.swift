import AsyncHTTPClient
import Foundation
import Synchronization

/// `--url` mode: the coordinator runs elsewhere, so its CPU and memory come from its own `/metrics`
/// (`process_cpu_seconds_total`, `process_resident_memory_bytes`), scraped once a second.
final class CoordinatorProcessProbe: Sendable {
    private struct State: Sendable {
        var first: (at: ContinuousClock.Instant, cpu: Double)?
        var last: (at: ContinuousClock.Instant, cpu: Double, residentMiB: Double)?
        var peakMiB = 0.0
    }

    let metricsURL: String
    private let state = Mutex(State())

    init(baseURL: String) {
        metricsURL = baseURL + "/metrics"
    }

    func run() async {
        while !Task.isCancelled {
            await sample()
            try? await Task.sleep(for: .seconds(1))
        }
    }

    func sample() async {
        guard let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: metricsURL), timeout: .seconds(2)),
              response.status == .ok, let body = try? await response.body.collect(upTo: 8 << 20) else { return }
        let text = String(buffer: body)
        guard let cpu = Self.value(of: "process_cpu_seconds_total", in: text),
              let resident = Self.value(of: "process_resident_memory_bytes", in: text) else { return }
        let now = ContinuousClock.now
        state.withLock { state in
            if state.first == nil { state.first = (now, cpu) }
            state.last = (now, cpu, resident / 1_048_576)
            state.peakMiB = max(state.peakMiB, resident / 1_048_576)
        }
    }

    var usage: [ProcessUsage] {
        state.withLock { state in
            guard let first = state.first, let last = state.last else { return [] }
            let wall = Double((last.at - first.at).components.seconds) + Double((last.at - first.at).components.attoseconds) / 1e18
            return [ProcessUsage(
                name: "coordinator (its /metrics)", cpuPercent: wall > 0 ? (last.cpu - first.cpu) / wall * 100 : 0,
                residentMiB: last.residentMiB, peakResidentMiB: state.peakMiB)]
        }
    }

    /// The value of an unlabelled sample in Prometheus text.
    static func value(of name: String, in text: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.dropFirst(name.count + 1).split(separator: " ").first ?? "")
        }
        return nil
    }
}
