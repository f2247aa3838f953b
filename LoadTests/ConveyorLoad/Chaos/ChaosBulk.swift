import AsyncHTTPClient
import ConveyorCore
import ConveyorPostgres
import Foundation
import Logging
import NIOCore
import Synchronization

/// Search and bulk actions under the chaos: every so often a batch of tasks scheduled an hour ahead, each
/// batch with a tag of its own, then a bulk cancel by that tag, sent again (to the next coordinator)
/// until a call answers `"more": false`, and a search by the tag. Such a task can end only by that
/// cancel, so afterwards every one must be `cancelled` in PostgreSQL (none lost, none run) and every
/// batch's search must have answered.
final class ChaosBulk: Sendable {
    let rounds: Int
    let perRound = 20
    let duration: Duration
    let baseURLs: [String]
    let runID = String(UUID().uuidString.prefix(8)).lowercased()
    private struct State {
        var accepted: [Int64] = []
        var cancelCalls = 0
        var unfinishedRounds = 0
        var searchesAnswered = 0
        var failures: [String] = []
    }
    private let state = Mutex(State())

    init(rounds: Int, duration: Duration, baseURLs: [String]) {
        self.rounds = rounds
        self.duration = duration
        self.baseURLs = baseURLs
    }

    var accepted: [Int64] { state.withLock { $0.accepted } }
    var summary: (rounds: Int, tasks: Int, unfinishedRounds: Int, searches: Int, failures: [String]) {
        state.withLock { ($0.accepted.count / max(perRound, 1), $0.accepted.count, $0.unfinishedRounds, $0.searchesAnswered, $0.failures) }
    }

    func run(startedAt: ContinuousClock.Instant) async {
        guard rounds > 0 else { return }
        let interval = duration / rounds
        for round in 0..<rounds {
            try? await Task.sleep(until: startedAt + interval * round)
            await self.round(round)
        }
    }

    private func round(_ round: Int) async {
        let tag = "chaos-bulk:\(runID)-\(round)"
        let tasks = (0..<perRound).map { _ in #"{"type":"noop","delay":"1h","tags":{"chaos-bulk":"\#(runID)-\#(round)"}}"# }
        guard let reply = await call("/v1/tasks/batch", body: "{\"tasks\":[\(tasks.joined(separator: ","))]}", key: "chaos-bulk-\(runID)-\(round)", attempt: round)?.reply,
            let ids = reply["tasks"]?.arrayValue?.compactMap({ $0["id"]?.intValue })
        else {
            state.withLock { $0.unfinishedRounds += 1 }
            return
        }
        state.withLock { $0.accepted += ids }
        var more = true
        var attempt = 0
        let deadline = ContinuousClock.now + .seconds(120)
        while more && ContinuousClock.now < deadline {
            attempt += 1
            if let (answer, retried) = await call("/v1/tasks/cancel", body: "{\"tag\":\"\(tag)\",\"limit\":\(perRound)}", key: nil, attempt: round + attempt) {
                state.withLock { $0.cancelCalls += 1 }
                more = answer["more"] == .bool(true)
                // A coordinator killed mid-call may have cancelled part or all: the next call (or the retry of
                // this one on another coordinator) finds the rest, or nothing.
                if !more, answer["cancelled"]?.intValue == 0, attempt == 1, !retried {
                    state.withLock { $0.failures.append("round \(round): the first cancel found nothing") }
                }
            }
        }
        if more { state.withLock { $0.unfinishedRounds += 1 } }
        if await get("/v1/tasks?tag=\(tag)&limit=50", attempt: round) != nil { state.withLock { $0.searchesAnswered += 1 } }
    }

    /// POSTs to the coordinators in turn until one answers 2xx (nil after a minute of failures); `retried`:
    /// an earlier try got no answer at all, so it may have taken effect before its coordinator died.
    private func call(_ path: String, body: String, key: String?, attempt: Int) async -> (reply: JSONValue, retried: Bool)? {
        let deadline = ContinuousClock.now + .seconds(60)
        var turn = attempt
        var unanswered = false
        while ContinuousClock.now < deadline {
            var request = HTTPClientRequest(url: baseURLs[turn % baseURLs.count] + path)
            turn += 1
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(ChaosCluster.token)")
            request.headers.add(name: "Content-Type", value: "application/json")
            if let key { request.headers.add(name: "Idempotency-Key", value: key) }
            request.body = .bytes(ByteBuffer(string: body))
            if let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(15)),
                let text = try? await response.body.collect(upTo: 1 << 20)
            {
                if (200..<300).contains(response.status.code) {
                    return (try? JSONValue.parse(String(buffer: text))).map { ($0, unanswered) }
                }
                if response.status.code < 500 {
                    state.withLock { $0.failures.append("\(path): \(response.status.code) \(String(buffer: text).prefix(200))") }
                    return nil
                }
            } else {
                unanswered = true
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return nil
    }

    private func get(_ path: String, attempt: Int) async -> JSONValue? {
        for turn in attempt..<(attempt + 30) {
            var request = HTTPClientRequest(url: baseURLs[turn % baseURLs.count] + path)
            request.headers.add(name: "Authorization", value: "Bearer \(ChaosCluster.token)")
            if let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(15)), response.status.code == 200,
                let text = try? await response.body.collect(upTo: 1 << 20)
            {
                return try? JSONValue.parse(String(buffer: text))
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return nil
    }

    /// Statuses of the accepted tasks in PostgreSQL: every one must be `cancelled`.
    func statuses(url: String) async throws -> [String: Int] {
        let ids = accepted
        guard !ids.isEmpty else { return [:] }
        let connection = PostgresConnection(url: url, name: "chaos-bulk", logger: Logger(label: "conveyor.load", factory: { _ in SwiftLogNoOpLogHandler() }))
        defer { connection.close() }
        return try await connection.withSession { session in
            var counts: [String: Int] = [:]
            for row in try session.query(
                "SELECT status, count(*) FROM tasks WHERE id = ANY($1::bigint[]) GROUP BY status", [PostgresArrayLiteral.integers(ids)]).rows {
                counts[row[0] ?? "?"] = row[1].flatMap { Int($0) } ?? 0
            }
            return counts
        }
    }
}
