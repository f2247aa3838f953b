import ConveyorMetricNames
import ConveyorObservability
import Hummingbird
import Metrics

/// Counts every request by route, method and status, and times it. The route is the matched pattern
/// (`/v1/tasks/{id}`), never the raw path, so ids do not become label values.
struct MetricsMiddleware: RouterMiddleware {
    /// The submission routes, whose latency is also the enqueue latency.
    static let submissionEndpoints = ["/v1/tasks": "single", "/v1/tasks/batch": "batch"]

    func handle(
        _ request: Request, context: CoordinatorRequestContext,
        next: (Request, CoordinatorRequestContext) async throws -> Response
    ) async throws -> Response {
        let started = ContinuousClock.now
        let response = try await next(request, context)
        let route = context.endpointPath ?? "unmatched"
        let method = request.method.rawValue
        Counter(label: MetricsCatalog.httpRequests.name, dimensions: [
            ("route", route), ("method", method), ("status", String(response.status.code)),
        ]).increment()
        Timer(label: MetricsCatalog.httpDuration.name, dimensions: [("route", route), ("method", method)])
            .recordInterval(since: started)
        if request.method == .post, let endpoint = Self.submissionEndpoints[route] {
            Timer(label: MetricsCatalog.enqueueDuration.name, dimensions: [("endpoint", endpoint)]).recordInterval(since: started)
        }
        return response
    }
}
