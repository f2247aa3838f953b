import AsyncHTTPClient
import ConveyorCore
import Foundation
import NIOCore
import Synchronization

/// Submits workflows beside the chaos mix, as a careful client would (an Idempotency-Key each, a failed
/// request sent again to the next coordinator), and checks afterwards that every one ended, succeeded,
/// with its join queued once and no node started before its dependencies succeeded.
///
/// Each workflow: `root` (noop) → `a` (sleep), `b` (fail-once), `c` (noop) → `join` (noop) → `tail`
/// (sleep). Every node succeeds in the end (fail-once succeeds on its retry), so every workflow must.
final class ChaosWorkflows: Sendable {
    static let dependencies: [String: [String]] = [
        "root": [], "a": ["root"], "b": ["root"], "c": ["root"], "join": ["a", "b", "c"], "tail": ["join"],
    ]

    let total: Int
    let duration: Duration
    let baseURLs: [String]
    let runID = String(UUID().uuidString.prefix(8)).lowercased()
    private let state = Mutex<(accepted: [AcceptedWorkflow], unanswered: Int, rejected: [String])>(([], 0, []))

    init(total: Int, duration: Duration, baseURLs: [String]) {
        self.total = total
        self.duration = duration
        self.baseURLs = baseURLs
    }

    var accepted: [AcceptedWorkflow] { state.withLock { $0.accepted } }
    var unanswered: Int { state.withLock { $0.unanswered } }
    var rejected: [String] { state.withLock { $0.rejected } }

    func run(startedAt: ContinuousClock.Instant) async {
        guard total > 0 else { return }
        let interval = duration / total
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<total {
                group.addTask {
                    try? await Task.sleep(until: startedAt + interval * index)
                    await self.send(index)
                }
            }
        }
    }

    private func body(_ index: Int) -> String {
        func node(_ key: String, _ type: String, _ params: String) -> String {
            let after = Self.dependencies[key]!.map { "\"\($0)\"" }.joined(separator: ",")
            return "{\"key\":\"\(key)\",\"type\":\"\(type)\",\"params\":\(params),\"depends_on\":[\(after)]}"
        }
        let nodes = [
            node("root", "noop", "{}"), node("a", "sleep", "{\"ms\":\(20 + index % 80)}"), node("b", "fail-once", "{\"times\":1}"),
            node("c", "noop", "{}"), node("join", "noop", "{}"), node("tail", "sleep", "{\"ms\":\(10 + index % 40)}"),
        ]
        return "{\"name\":\"chaos\",\"nodes\":[" + nodes.joined(separator: ",") + "]}"
    }

    private func send(_ index: Int) async {
        let body = body(index)
        let deadline = ContinuousClock.now + .seconds(300)
        var attempt = 0
        while ContinuousClock.now < deadline {
            let baseURL = baseURLs[(index + attempt) % baseURLs.count]
            attempt += 1
            var request = HTTPClientRequest(url: baseURL + "/v1/workflows")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(ChaosCluster.token)")
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "Idempotency-Key", value: "chaos-wf-\(runID)-\(index)")
            request.body = .bytes(ByteBuffer(string: body))
            do {
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(15))
                let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
                switch response.status.code {
                case 200, 201:
                    let json = try? JSONValue.parse(text)
                    guard let id = json?["id"]?.intValue, case .object(let nodes)? = json?["nodes"] else { break }
                    state.withLock { $0.accepted.append(AcceptedWorkflow(id: id, nodes: nodes.compactMapValues(\.intValue))) }
                    return
                case 500...599, 429:
                    break
                default:
                    state.withLock { $0.rejected.append("workflow \(index): \(response.status.code) \(text.prefix(200))") }
                    return
                }
            } catch {
                // The coordinator is down or restarting: the next one gets the same request.
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        state.withLock { $0.unanswered += 1 }
    }

    func check(url: String, journalPath: String) async throws -> WorkflowCheck {
        try await WorkflowCheck.make(url: url, accepted: accepted, dependencies: Self.dependencies, journalPaths: [journalPath])
    }

    /// How many of the accepted workflows are still running.
    func running(url: String) async throws -> Int {
        try await WorkflowCheck.running(url: url, ids: accepted.map(\.id))
    }
}
