import Metrics
import Prometheus
import Synchronization

/// The process's metrics: bootstraps swift-metrics once (coordinator, agents and tests may share a
/// process) and renders the Prometheus text format for `/metrics`.
public enum MetricsExposition {
    private static let state = Mutex<PrometheusCollectorRegistry?>(nil)

    /// The registry every metric of this process lands in; bootstraps swift-metrics on first use.
    @discardableResult
    public static func bootstrap() -> PrometheusCollectorRegistry {
        state.withLock { state in
            if let registry = state { return registry }
            let registry = PrometheusCollectorRegistry()
            if Observability.isEnabled {
                MetricsSystem.bootstrap(ConveyorMetricsFactory(registry: registry))
            } else {
                MetricsSystem.bootstrap(NOOPMetricsHandler.instance)
            }
            state = registry
            return registry
        }
    }

    /// The text exposition (version 0.0.4), gzip-compressed when `acceptEncoding` allows it.
    public static func render(acceptEncoding: String?) -> (body: [UInt8], gzipped: Bool) {
        let registry = bootstrap()
        ProcessMetrics.sample(registry)
        var body: [UInt8] = []
        registry.emit(into: &body)
        if let acceptEncoding, acceptEncoding.lowercased().contains("gzip"), let compressed = Gzip.compress(body) {
            return (compressed, true)
        }
        return (body, false)
    }

    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}
