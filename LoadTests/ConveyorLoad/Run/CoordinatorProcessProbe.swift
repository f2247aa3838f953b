import AsyncHTTPClient
import Foundation
import Synchronization

/// `--url` mode: the coordinator runs elsewhere, so its CPU and memory come from its own `/metrics`
/// (`process_cpu_seconds_total`, `process_resident_memory_bytes`), scraped once a second.
final class CoordinatorProcessProbe: Sendable {
    let metricsURL: String
    private let window = Mutex(UsageWindow())

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
        window.withLock { $0.record(at: now, cpuSeconds: cpu, residentMiB: resident / 1_048_576) }
    }

    var usage: [ProcessUsage] {
        window.withLock { $0.usage(name: "coordinator (its /metrics)").map { [$0] } ?? [] }
    }

    /// The value of an unlabelled sample in Prometheus text.
    static func value(of name: String, in text: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.dropFirst(name.count + 1).split(separator: " ").first ?? "")
        }
        return nil
    }
}
