import ConveyorMetricNames
import ConveyorObservability
import Hummingbird
import Metrics

/// `GET /metrics`: the Prometheus text format, gzip-compressed when the scraper asks. Unauthenticated,
/// like `/health`: it carries counts, never task data. Queue gauges are sampled from Redis first, and
/// the open live streams and waits from the ``TaskWatchHub``.
struct MetricsRoutes: Sendable {
    let sampler: QueueSampler
    let hub: TaskWatchHub

    func register(on router: Router<CoordinatorRequestContext>) {
        router.get("metrics") { request, _ -> Response in
            guard Observability.isEnabled else { throw APIError.notFound("metrics are off (CONVEYOR_OBSERVABILITY_ENABLED=false)") }
            await sampler.sample()
            Gauge(label: MetricsCatalog.taskWatchers.name).record(hub.watcherCount)
            return MetricsResponse.make(acceptEncoding: request.headers[.acceptEncoding])
        }
    }
}

/// A `/metrics` response for any Hummingbird router (the coordinator's and the agent's).
enum MetricsResponse {
    static func make(acceptEncoding: String?) -> Response {
        let (body, gzipped) = MetricsExposition.render(acceptEncoding: acceptEncoding)
        var headers: HTTPFields = [.contentType: MetricsExposition.contentType]
        if gzipped { headers[.contentEncoding] = "gzip" }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
