import AsyncHTTPClient
import ConveyorCore
import ConveyorPostgres
import Foundation
import Logging
import NIOCore
import Synchronization

/// Graceful overload under the chaos: a few bursts, each of ``requestsPerBurst`` batch requests of
/// ``tasksPerRequest`` noop tasks sent to one coordinator at once, several times what its Submitter
/// queue holds (the chaos cluster runs with `CONVEYOR_SUBMIT_QUEUE_MAX=1000`, the least allowed).
///
/// What must hold: the coordinator sheds what does not fit with 503 `overloaded` and a `Retry-After`
/// (some request of the run must be shed, or the gate was not exercised); a request shed at its first
/// try stored nothing (none of its idempotency keys is in PostgreSQL); and every task of an accepted
/// request finishes like the rest of the load (it joins the run's LOST count). A request whose first
/// try ended without an answer (a coordinator killed under it) may have stored part of itself, so it is
/// sent again, same keys, after each shed's `Retry-After`, as a careful client would, until accepted.
final class ChaosOverload: Sendable {
    let bursts: Int
    let requestsPerBurst = 8
    let tasksPerRequest = 1000
    let duration: Duration
    let baseURLs: [String]
    let runID = String(UUID().uuidString.prefix(8)).lowercased()

    private struct State {
        var accepted: [Int64] = []
        var acceptedRequests = 0
        var shed = 0
        /// Idempotency-Key headers of the requests shed at their first try.
        var shedAtFirstTry: [String] = []
        /// Sheds without `Retry-After` or without the `overloaded` code.
        var malformedSheds: [String] = []
        var unanswered = 0
        var failures: [String] = []
    }
    private let state = Mutex(State())

    init(bursts: Int, duration: Duration, baseURLs: [String]) {
        self.bursts = bursts
        self.duration = duration
        self.baseURLs = baseURLs
    }

    var accepted: [Int64] { state.withLock { $0.accepted } }

    struct Summary {
        var requests: Int
        var acceptedRequests: Int
        var acceptedTasks: Int
        var shed: Int
        var shedAtFirstTry: Int
        var malformedSheds: [String]
        var unanswered: Int
        var failures: [String]
    }

    var summary: Summary {
        state.withLock {
            Summary(
                requests: bursts * requestsPerBurst, acceptedRequests: $0.acceptedRequests, acceptedTasks: $0.accepted.count, shed: $0.shed,
                shedAtFirstTry: $0.shedAtFirstTry.count, malformedSheds: $0.malformedSheds, unanswered: $0.unanswered, failures: $0.failures)
        }
    }

    /// The bursts, spread over the load (each in the middle of its share of it).
    func run(startedAt: ContinuousClock.Instant) async {
        guard bursts > 0 else { return }
        let interval = duration / bursts
        for burst in 0..<bursts {
            try? await Task.sleep(until: startedAt + interval * burst + interval / 2)
            await withTaskGroup(of: Void.self) { group in
                for request in 0..<requestsPerBurst {
                    group.addTask { await self.send(burst: burst, request: request) }
                }
            }
        }
    }

    private func body() -> String {
        let task = #"{"type":"noop","params":{}}"#
        return "{\"tasks\":[" + repeatElement(task, count: tasksPerRequest).joined(separator: ",") + "]}"
    }

    private func send(burst: Int, request: Int) async {
        let key = "chaos-overload-\(runID)-\(burst)-\(request)"
        let body = body()
        let deadline = ContinuousClock.now + .seconds(180)
        var answeredBefore = true  // every earlier try was answered (so a shed one stored nothing)
        var turn = burst
        while ContinuousClock.now < deadline {
            var http = HTTPClientRequest(url: baseURLs[turn % baseURLs.count] + "/v1/tasks/batch")
            http.method = .POST
            http.headers.add(name: "Authorization", value: "Bearer \(ChaosCluster.token)")
            http.headers.add(name: "Content-Type", value: "application/json")
            http.headers.add(name: "Idempotency-Key", value: key)
            http.body = .bytes(ByteBuffer(string: body))
            var wait = Duration.milliseconds(200)
            do {
                let response = try await HTTPClient.shared.execute(http, timeout: .seconds(30))
                let text = String(buffer: try await response.body.collect(upTo: 1 << 22))
                let reply = try? JSONValue.parse(text)
                switch response.status.code {
                case 200, 201:
                    let ids = reply?["tasks"]?.arrayValue?.compactMap { $0["id"]?.intValue } ?? []
                    state.withLock {
                        $0.accepted += ids
                        $0.acceptedRequests += 1
                        if ids.count != tasksPerRequest { $0.failures.append("\(key): \(ids.count) ids in a 2xx reply") }
                    }
                    return
                case 503 where reply?["error"]?["code"] == .string("overloaded"):
                    let retryAfter = response.headers.first(name: "Retry-After").flatMap { Int($0) }
                    let firstTry = answeredBefore
                    state.withLock {
                        $0.shed += 1
                        if retryAfter == nil || retryAfter! < 1 { $0.malformedSheds.append("\(key): Retry-After \(response.headers.first(name: "Retry-After") ?? "missing")") }
                        if firstTry { $0.shedAtFirstTry.append(key) }
                    }
                    // Nothing of it was stored, and every earlier try was refused outright: done.
                    if firstTry { return }
                    wait = .seconds(retryAfter ?? 1)
                case 500...599, 429:
                    answeredBefore = false  // may have stored part: send the same keys again
                default:
                    state.withLock { $0.failures.append("\(key): \(response.status.code) \(text.prefix(200))") }
                    return
                }
            } catch {
                answeredBefore = false  // refused or reset: a coordinator is down, and may have stored part
            }
            turn += 1
            try? await Task.sleep(for: wait)
        }
        state.withLock { $0.unanswered += 1 }
    }

    /// Tasks in PostgreSQL from requests shed at their first try: must be none.
    func storedOfShed(url: String) async throws -> Int {
        let keys = state.withLock { $0.shedAtFirstTry }
        guard !keys.isEmpty else { return 0 }
        let connection = PostgresConnection(url: url, name: "chaos-overload", logger: Logger(label: "conveyor.load", factory: { _ in SwiftLogNoOpLogHandler() }))
        defer { connection.close() }
        return try await connection.withSession { session in
            let rows = try session.query(
                "SELECT count(*) FROM tasks WHERE idempotency_key LIKE ANY($1::text[])",
                [PostgresArrayLiteral.text(keys.map { $0 + ":%" })]).rows
            return rows.first?[0].flatMap { Int($0) } ?? 0
        }
    }
}
