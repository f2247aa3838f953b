import AsyncHTTPClient

/// Whether a coordinator answers `/ready` (PostgreSQL and Redis reachable, migrations applied): how the
/// chaos run and the embedded load stack tell that a `conveyor coordinator` process is up.
enum CoordinatorReadiness {
    static func isReady(_ baseURL: String) async -> Bool {
        var request = HTTPClientRequest(url: baseURL + "/ready")
        request.method = .GET
        guard let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(2)) else { return false }
        return response.status.code == 200
    }
}
