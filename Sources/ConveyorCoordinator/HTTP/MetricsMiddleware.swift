import ConveyorMetricNames
import ConveyorObservability
import Hummingbird
import Metrics
import Synchronization

/// Counts every request by route, method and status, and times it. The route is the matched pattern
/// (`/v1/tasks/{id}`), never the raw path, so ids do not become label values.
struct MetricsMiddleware: RouterMiddleware {
    /// The submission routes, whose latency is also the enqueue latency.
    static let submissionEndpoints = ["/v1/tasks": "single", "/v1/tasks/batch": "batch"]

    private let handles = RequestMetricHandles()

    func handle(
        _ request: Request, context: CoordinatorRequestContext,
        next: (Request, CoordinatorRequestContext) async throws -> Response
    ) async throws -> Response {
        let started = ContinuousClock.now
        let response = try await next(request, context)
        let metrics = handles.for(route: context.endpointPath ?? "unmatched", method: request.method, status: response.status.code)
        metrics.requests.increment()
        metrics.duration.recordInterval(since: started)
        metrics.enqueueDuration?.recordInterval(since: started)
        return response
    }
}

/// The metric handles of each (route, method, status) the server has answered, made once.
///
/// `Counter(label:dimensions:)` and `Timer(label:dimensions:)` allocate a handle and its dimensions and
/// look the metric up in the factory on every call; three per request, on every request. One entry per
/// request counter the registry holds anyway (routes are patterns, unknown paths one "unmatched"), so the
/// table grows only as `/metrics` does.
final class RequestMetricHandles: Sendable {
    struct Handles: Sendable {
        let requests: Counter
        let duration: Metrics.Timer
        /// Only for `POST` to a submission route.
        let enqueueDuration: Metrics.Timer?
    }

    private struct Key: Hashable {
        let route: String
        let method: HTTPRequest.Method
        let status: Int
    }

    private let table = Mutex<[Key: Handles]>([:])

    func `for`(route: String, method: HTTPRequest.Method, status: Int) -> Handles {
        let key = Key(route: route, method: method, status: status)
        if let known = table.withLock({ $0[key] }) { return known }
        let made = Handles(
            requests: Counter(label: MetricsCatalog.httpRequests.name, dimensions: [
                ("route", route), ("method", method.rawValue), ("status", String(status)),
            ]),
            duration: Metrics.Timer(label: MetricsCatalog.httpDuration.name, dimensions: [("route", route), ("method", method.rawValue)]),
            enqueueDuration: method == .post
                ? MetricsMiddleware.submissionEndpoints[route].map {
                    Metrics.Timer(label: MetricsCatalog.enqueueDuration.name, dimensions: [("endpoint", $0)])
                } : nil)
        // Two first requests may both make handles: the factory returns the same metric to both.
        return table.withLock { table in
            if let known = table[key] { return known }
            table[key] = made
            return made
        }
    }
}
