import AsyncHTTPClient
import ConveyorCore
import Foundation
import NIOCore
import Synchronization

/// Submits the chaos mix through `/v1/tasks/batch` at a steady rate, as a careful client would: every
/// task carries an idempotency key, and a request that fails (refused, reset, 5xx) is sent again, same
/// body, to the next coordinator, until it gets its answer. A task counts as accepted once a reply
/// names its id.
final class ChaosLoad: Sendable {
    enum Kind: String, CaseIterable, Sendable {
        case noop, delayed, remote, limited, sleep, steps, failOnce = "fail-once"

        /// The task type this kind submits.
        var type: String { self == .delayed ? "noop" : rawValue }
    }

    struct Accepted: Sendable {
        var id: Int64
        var kind: Kind
        var hasCallback: Bool
        var limitKey: String?
    }

    let total: Int
    let batchSize = 20
    let senders = 8
    let duration: Duration
    let baseURLs: [String]
    /// Every tenth task (of every kind) has this completion webhook.
    let callbackURL: String
    let runID = String(UUID().uuidString.prefix(8)).lowercased()
    private let next = Atomic<Int>(0)
    private let state = Mutex(State())

    private struct State {
        var accepted: [Accepted] = []
        var unanswered = 0
        var rejected: [String] = []
        /// (sent, answered) in Unix ms of every successful request: recovery times are read from them.
        var successes: [(sent: Int64, answered: Int64)] = []
        var twins = TwinSummary()
    }

    /// Every tenth batch is also sent, at the same moment, to the other coordinator: two submissions of
    /// the same idempotency keys racing through two Submitters across every fault. Both answers must
    /// name the same tasks, and a task only the twin's answer named must exist and finish all the same
    /// (a key answered from a row its first submitter then withdrew would be a lost task).
    struct TwinSummary: Sendable {
        /// Batches whose twin got an answer naming tasks.
        var answered = 0
        var unanswered = 0
        /// Twins whose answer named other tasks than the batch's own.
        var mismatches: [String] = []
        /// Twins refused with a status other than 429 or 5xx.
        var refused: [String] = []
        /// Ids only a twin's answer named.
        var onlyTwinIDs: [Int64] = []
    }

    static func isTwinned(_ batch: Int) -> Bool { batch % 10 == 5 }

    private enum Outcome: Sendable {
        case accepted(ids: [Int64], sent: Int64, answered: Int64)
        case rejected(String)
        case unanswered
    }

    init(total: Int, duration: Duration, baseURLs: [String], callbackURL: String) {
        self.callbackURL = callbackURL
        self.total = total
        self.duration = duration
        self.baseURLs = baseURLs
    }

    var accepted: [Accepted] { state.withLock { $0.accepted } }
    var unanswered: Int { state.withLock { $0.unanswered } }
    var rejected: [String] { state.withLock { $0.rejected } }
    var twins: TwinSummary { state.withLock { $0.twins } }

    /// When the first request sent at or after `millis` that succeeded got its answer, if any.
    func firstSuccess(sentAtOrAfter millis: Int64) -> Int64? {
        state.withLock { $0.successes.filter { $0.sent >= millis }.map(\.answered).min() }
    }

    /// The kind of the `index`th task: 35% noop (a fifth of them high priority, a fifth low), 5% limited
    /// (at most 3 at once cluster-wide, 1 per limit key, 100/s), 10% delayed noop (0.5–3 s), 5% remote
    /// (the HTTP push handler), 20% sleep, 10% steps (reporting progress), 15% fail-once.
    static func kind(of index: Int) -> Kind {
        switch index % 20 {
        case 0..<7: .noop
        case 7: .limited
        case 8: .remote
        case 9..<11: .delayed
        case 11..<15: .sleep
        case 15..<17: .steps
        default: .failOnce
        }
    }

    static func hasCallback(_ index: Int) -> Bool { index % 10 == 7 }

    /// Noop tasks 0 and 1 of every twenty are high priority, 2 low; the rest normal.
    static func priority(of index: Int) -> String? {
        switch index % 20 {
        case 0, 1: "high"
        case 2: "low"
        default: nil
        }
    }

    /// The limit key of a `limited` task.
    static func limitKey(of index: Int) -> String { "key-\(index % 4)" }

    func run(startedAt: ContinuousClock.Instant) async {
        let batches = (total + batchSize - 1) / batchSize
        let interval = duration / batches
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<senders {
                group.addTask {
                    while true {
                        let batch = self.next.add(1, ordering: .relaxed).oldValue
                        guard batch < batches else { return }
                        try? await Task.sleep(until: startedAt + interval * batch)
                        await self.send(batch: batch)
                    }
                }
            }
        }
    }

    private func body(batch: Int) -> String {
        let range = (batch * batchSize)..<min(total, (batch + 1) * batchSize)
        let elements = range.map { index -> String in
            let params: String
            switch Self.kind(of: index) {
            case .noop, .delayed: params = "{}"
            case .remote: params = "{\"n\":\(index)}"
            case .sleep: params = "{\"ms\":\(10 + (index * 37) % 190)}"
            case .limited: params = "{\"ms\":\(10 + (index * 29) % 40)}"
            case .steps: params = "{\"steps\":\(3 + index % 4),\"ms\":\(20 + (index * 13) % 80)}"
            case .failOnce: params = "{\"times\":1}"
            }
            var extra = ""
            if Self.kind(of: index) == .delayed { extra += ",\"delay\":\"\(500 + (index * 53) % 2500)ms\"" }
            if Self.kind(of: index) == .limited { extra += ",\"limit_key\":\"\(Self.limitKey(of: index))\"" }
            if Self.kind(of: index) == .noop, let priority = Self.priority(of: index) { extra += ",\"priority\":\"\(priority)\"" }
            if Self.hasCallback(index) { extra += ",\"callback_url\":\"\(callbackURL)\"" }
            return "{\"type\":\"\(Self.kind(of: index).type)\",\"params\":\(params),\"idempotency_key\":\"chaos-\(runID)-\(index)\"\(extra)}"
        }
        return "{\"tasks\":[" + elements.joined(separator: ",") + "]}"
    }

    private func send(batch: Int) async {
        let body = body(batch: batch)
        let first = batch * batchSize
        async let twin: Outcome? = Self.isTwinned(batch) ? post(body, batch: batch, firstCoordinator: batch + 1) : nil
        let outcome = await post(body, batch: batch, firstCoordinator: batch)
        state.withLock { state in
            switch outcome {
            case let .accepted(ids, sent, answered):
                for (offset, id) in ids.enumerated() {
                    state.accepted.append(Accepted(
                        id: id, kind: Self.kind(of: first + offset), hasCallback: Self.hasCallback(first + offset),
                        limitKey: Self.kind(of: first + offset) == .limited ? Self.limitKey(of: first + offset) : nil))
                }
                state.successes.append((sent, answered))
            case let .rejected(message):
                state.rejected.append(message)
            case .unanswered:
                state.unanswered += 1
            }
        }
        guard let twinOutcome = await twin else { return }
        state.withLock { state in
            switch (outcome, twinOutcome) {
            case let (.accepted(ids, _, _), .accepted(twinIDs, _, _)):
                state.twins.answered += 1
                if ids != twinIDs { state.twins.mismatches.append("batch \(batch): \(ids.prefix(3)) against the twin's \(twinIDs.prefix(3))") }
                let own = Set(ids)
                state.twins.onlyTwinIDs += twinIDs.filter { !own.contains($0) }
            case let (_, .accepted(twinIDs, _, _)):
                state.twins.answered += 1
                state.twins.onlyTwinIDs += twinIDs
            case let (_, .rejected(message)):
                state.twins.refused.append("twin of \(message)")
            case (_, .unanswered):
                state.twins.unanswered += 1
            }
        }
    }

    /// Sends one batch until it is answered, starting at coordinator `firstCoordinator` (modulo their
    /// count) and moving to the next after every failure.
    private func post(_ body: String, batch: Int, firstCoordinator: Int) async -> Outcome {
        let deadline = ContinuousClock.now + .seconds(300)
        var attempt = 0
        while ContinuousClock.now < deadline {
            let baseURL = baseURLs[(firstCoordinator + attempt) % baseURLs.count]
            attempt += 1
            var request = HTTPClientRequest(url: baseURL + "/v1/tasks/batch")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(ChaosCluster.token)")
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
            let sent = WallClock.nowMillis()
            do {
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(15))
                let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
                switch response.status.code {
                case 200, 201:
                    let ids = (try? JSONValue.parse(text))?["tasks"]?.arrayValue?.compactMap { $0["id"]?.intValue } ?? []
                    return .accepted(ids: ids, sent: sent, answered: WallClock.nowMillis())
                case 500...599, 429:
                    break  // the broker is recovering: send the same batch again
                default:
                    return .rejected("batch \(batch): \(response.status.code) \(text.prefix(200))")
                }
            } catch {
                // Connection refused or reset: the coordinator is down or restarting.
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return .unanswered
    }
}
