import AsyncHTTPClient
import ConveyorCore
import Foundation
import NIOCore
import Synchronization

/// Drives a coordinator with submissions, open loop or closed loop, and measures enqueue latency.
///
/// Open loop (`rate` set): request `i` is due at `start + i × interval`, whether or not earlier ones
/// have been answered; its latency counts from that intended time, so a stalled server cannot hide its
/// stall by slowing the client down (no coordinated omission). Closed loop (`rate` nil): `concurrency`
/// senders each send the next request as soon as the previous one is answered, to find the ceiling.
final class LoadRun: Sendable {
    struct Result: Sendable {
        var acceptedIDs: [Int64]
        var failedRequests: Int
        /// Enqueue latency of each answered request, milliseconds, sorted.
        var latencies: [Double]
        var elapsed: Duration
    }

    let baseURL: String
    let token: String?
    let rate: Double?
    let duration: Duration
    let batch: Int
    let concurrency: Int
    let mix: [(type: String, share: Double)]
    private let next = Atomic<Int>(0)
    private let state = Mutex<(ids: [Int64], failed: Int, latencies: [Double])>(([], 0, []))

    init(baseURL: String, token: String?, rate: Double?, duration: Duration, batch: Int, concurrency: Int, mix: [(type: String, share: Double)]) {
        self.baseURL = baseURL
        self.token = token
        self.rate = rate
        self.duration = duration
        self.batch = batch
        self.concurrency = concurrency
        self.mix = mix
    }

    func run() async -> Result {
        let start = ContinuousClock.now
        let end = start + duration
        // Requests per second = tasks per second / tasks per request.
        let interval = rate.map { Duration.nanoseconds(Int64(1e9 * Double(batch) / $0)) }
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    while true {
                        let index = self.next.add(1, ordering: .relaxed).oldValue
                        let intended: ContinuousClock.Instant
                        if let interval {
                            intended = start + interval * index
                            guard intended < end else { return }
                            try? await Task.sleep(until: intended)
                        } else {
                            intended = .now
                            guard intended < end else { return }
                        }
                        await self.send(index: index, intended: intended)
                    }
                }
            }
        }
        let (ids, failed, latencies) = state.withLock { $0 }
        return Result(acceptedIDs: ids, failedRequests: failed, latencies: latencies.sorted(), elapsed: ContinuousClock.now - start)
    }

    private func body(index: Int) -> (path: String, body: String) {
        func task(_ number: Int) -> String {
            "{\"type\":\"\(LoadShape.type(at: number, in: mix))\"}"
        }
        if batch == 1 { return ("/v1/tasks", task(index)) }
        let tasks = (0..<batch).map { task(index * batch + $0) }
        return ("/v1/tasks/batch", "{\"tasks\":[" + tasks.joined(separator: ",") + "]}")
    }

    private func send(index: Int, intended: ContinuousClock.Instant) async {
        let (path, text) = body(index: index)
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = .POST
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: text))
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            let reply = String(buffer: try await response.body.collect(upTo: 4 << 20))
            let latency = ContinuousClock.now - intended
            let milliseconds = Double(latency.components.seconds) * 1000 + Double(latency.components.attoseconds) / 1e15
            guard response.status.code == 201 || response.status.code == 200, let json = try? JSONValue.parse(reply) else {
                state.withLock { $0.failed += 1 }
                return
            }
            let ids = batch == 1 ? [json["id"]?.intValue].compactMap { $0 } : (json["tasks"]?.arrayValue ?? []).compactMap { $0["id"]?.intValue }
            state.withLock { state in
                state.ids.append(contentsOf: ids)
                state.latencies.append(milliseconds)
            }
        } catch {
            state.withLock { $0.failed += 1 }
        }
    }
}
