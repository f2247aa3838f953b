import ConveyorObservability
import CoreMetrics
import Prometheus
import Testing

@Suite("The metrics factory")
struct MetricsFactoryTests {
    private func exposition(_ registry: PrometheusCollectorRegistry) -> String {
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test("a metric made again with the same label and dimensions is the handler made first, so both count into one series")
    func sameLabelAndDimensionsGiveTheSameHandler() {
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

        let timer = factory.makeTimer(label: "test_duration_seconds", dimensions: [("route", "/a")])
        #expect(timer === factory.makeTimer(label: "test_duration_seconds", dimensions: [("route", "/a")]))
        let gauge = factory.makeMeter(label: "test_depth", dimensions: [])
        #expect(gauge === factory.makeRecorder(label: "test_depth", dimensions: [], aggregate: false))
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
