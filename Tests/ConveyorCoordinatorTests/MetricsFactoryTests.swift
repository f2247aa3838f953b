@testable import ConveyorObservability
import CoreMetrics
import Prometheus
import Synchronization
import Testing

@Suite("The metrics factory")
struct MetricsFactoryTests {
    final class Handler: Sendable {}

    /// A `make` that counts how often the cache had to make a handler.
    final class Maker: Sendable {
        let made = Mutex(0)
        let handler: Handler

        init(handing handler: Handler = Handler()) { self.handler = handler }

        func make() -> Handler {
            made.withLock { $0 += 1 }
            return handler
        }

        var count: Int { made.withLock { $0 } }
    }

    private func exposition(_ registry: PrometheusCollectorRegistry) -> String {
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test("a repeated make asks for the metric once per kind, label and dimensions")
    func repeatedMakeIsMadeOnce() {
        let cache = MetricHandlerCache()
        let maker = Maker()
        for _ in 0..<3 {
            _ = cache.handler(.counter, label: "requests", dimensions: [("route", "/a"), ("status", "201")], make: maker.make)
        }
        #expect(maker.count == 1)
        _ = cache.handler(.counter, label: "requests", dimensions: [("route", "/a"), ("status", "503")], make: maker.make)
        _ = cache.handler(.counter, label: "requests", dimensions: [("route", "/a")], make: maker.make)
        _ = cache.handler(.counter, label: "other", dimensions: [("route", "/a"), ("status", "201")], make: maker.make)
        _ = cache.handler(.durationHistogram, label: "requests", dimensions: [("route", "/a"), ("status", "201")], make: maker.make)
        #expect(maker.count == 5)
    }

    @Test("forgetting a handler drops it under every kind that held it and unregisters it under the cache's lock")
    func forgetDropsEveryKey() {
        let cache = MetricHandlerCache()
        let shared = Maker()
        _ = cache.handler(.counter, label: "shed", dimensions: [], make: shared.make)
        _ = cache.handler(.floatingPointCounter, label: "shed", dimensions: [], make: shared.make)
        let other = Maker()
        _ = cache.handler(.gauge, label: "depth", dimensions: [], make: other.make)
        var unregistered = false
        cache.forget(shared.handler) { unregistered = true }
        #expect(unregistered)
        _ = cache.handler(.counter, label: "shed", dimensions: [], make: shared.make)
        _ = cache.handler(.floatingPointCounter, label: "shed", dimensions: [], make: shared.make)
        _ = cache.handler(.gauge, label: "depth", dimensions: [], make: other.make)
        #expect(shared.count == 4)
        #expect(other.count == 1)
    }

    @Test("the factory's metrics made again count into the one series of their label and dimensions")
    func factoryMetricsShareTheirSeries() {
        let registry = PrometheusCollectorRegistry()
        let factory = ConveyorMetricsFactory(registry: registry)
        let first = factory.makeCounter(label: "test_requests_total", dimensions: [("route", "/a"), ("status", "201")])
        let again = factory.makeCounter(label: "test_requests_total", dimensions: [("route", "/a"), ("status", "201")])
        let other = factory.makeCounter(label: "test_requests_total", dimensions: [("route", "/a"), ("status", "503")])
        #expect(first === again)
        #expect(first !== other)
        first.increment(by: 1)
        again.increment(by: 2)
        let text = exposition(registry)
        #expect(text.contains(#"test_requests_total{route="/a",status="201"} 3"#))
        #expect(text.contains(#"test_requests_total{route="/a",status="503"} 0"#))
    }

    @Test("a destroyed metric leaves the exposition, and making it again registers a new one")
    func destroyedMetricIsMadeAfresh() {
        let registry = PrometheusCollectorRegistry()
        let factory = ConveyorMetricsFactory(registry: registry)
        let first = factory.makeCounter(label: "test_shed_total", dimensions: [("queue", "q")])
        first.increment(by: 5)
        factory.destroyCounter(first)
        #expect(!exposition(registry).contains("test_shed_total"))
        let made = factory.makeCounter(label: "test_shed_total", dimensions: [("queue", "q")])
        #expect(made !== first)
        made.increment(by: 1)
        #expect(exposition(registry).contains(#"test_shed_total{queue="q"} 1"#))
    }
}
