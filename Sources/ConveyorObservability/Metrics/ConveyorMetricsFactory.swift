import ConveyorMetricNames
import CoreMetrics
import Prometheus

/// swift-metrics on swift-prometheus, with help text and buckets from ``MetricsCatalog``.
///
/// swift-prometheus' own factory registers every metric without help text, which `promtool check
/// metrics` rejects, and a registry refuses the same name with two help texts. So this factory names
/// each metric's help from the catalog; code keeps using the plain swift-metrics API. It also keeps
/// the handlers it made (``MetricHandlerCache``), so a metric created again on a hot path is not
/// registered again.
public struct ConveyorMetricsFactory: MetricsFactory {
    public let registry: PrometheusCollectorRegistry
    private let cache = MetricHandlerCache()

    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    private func descriptor(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: MetricsCatalog.byName[label]?.help ?? label)
    }

    private func buckets(_ label: String) -> [Double] {
        let buckets = MetricsCatalog.byName[label]?.buckets ?? []
        return buckets.isEmpty ? MetricsCatalog.latencyBuckets : buckets
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        cache.handler(.counter, label: label, dimensions: dimensions) {
            registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
        }
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        cache.handler(.floatingPointCounter, label: label, dimensions: dimensions) {
            registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
        }
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return gauge(label: label, dimensions: dimensions) }
        return cache.handler(.valueHistogram, label: label, dimensions: dimensions) {
            registry.makeValueHistogram(descriptor: descriptor(label), labels: dimensions, buckets: buckets(label))
        }
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        gauge(label: label, dimensions: dimensions)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        cache.handler(.durationHistogram, label: label, dimensions: dimensions) {
            registry.makeDurationHistogram(
                descriptor: descriptor(label), labels: dimensions,
                buckets: buckets(label).map { Duration.nanoseconds(Int64($0 * 1e9)) })
        }
    }

    private func gauge(label: String, dimensions: [(String, String)]) -> Prometheus.Gauge {
        cache.handler(.gauge, label: label, dimensions: dimensions) {
            registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
        }
    }

    public func destroyCounter(_ handler: any CounterHandler) {
        cache.forget(handler) {
            if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
        }
    }

    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        cache.forget(handler) {
            if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
        }
    }

    public func destroyRecorder(_ handler: any RecorderHandler) {
        cache.forget(handler) {
            if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
            if let histogram = handler as? Prometheus.Histogram<Double> { registry.unregisterValueHistogram(histogram) }
        }
    }

    public func destroyMeter(_ handler: any MeterHandler) {
        cache.forget(handler) {
            if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
        }
    }

    public func destroyTimer(_ handler: any TimerHandler) {
        cache.forget(handler) {
            if let histogram = handler as? Prometheus.Histogram<Duration> { registry.unregisterDurationHistogram(histogram) }
        }
    }
}
