import AsyncHTTPClient
import ConveyorCore
import Foundation
import NIOCore
import Synchronization

/// What to send: where, how fast, how much, in what shape.
struct LoadPlan: Sendable {
    var baseURL: String
    var token: String?
    /// Tasks per second (open loop), or nil for closed loop.
    var rate: Double?
    var duration: Duration?
    /// Stop after this many tasks (whichever of duration and count comes first).
    var count: Int?
    var batch: Int
    var concurrency: Int
    var mix: [MixEntry]
    /// Print a progress line every second.
    var progress = true
    /// Cancel every this-many-th accepted task right after it is accepted (single POSTs only).
    var cancelEvery: Int?
}

/// Drives a coordinator with submissions, open loop or closed loop, and measures enqueue latency.
///
/// Open loop (`rate` set): request `i` is due at `start + i × interval`, whether or not earlier ones
/// have been answered; its latency counts from that intended time, so a stalled server cannot hide its
/// stall by slowing the client down (no coordinated omission). Closed loop (`rate` nil): `concurrency`
/// senders each send the next request as soon as the previous one is answered, to find the ceiling.
final class LoadRun: Sendable {
    /// One second of the run, for the progress line and the chart.
    struct Second: Sendable, Codable {
        var second: Int
        var accepted: Int
        var failed: Int
        var inFlight: Int
        var enqueueP50Milliseconds: Double
        var enqueueP99Milliseconds: Double
        /// The whole machine in that second (nil where `/proc/stat` cannot be read).
        var machine: MachineSecond?
    }

    struct Result: Sendable {
        var acceptedIDs: [Int64]
        var submittedTasks: Int
        var failedTasks: Int
        /// Failed requests by cause ("HTTP 503", "timeout", …); shed ones are not among them.
        var errors: [String: Int]
        /// Requests the coordinator shed (429 or 503 with `Retry-After`: overloaded), and their tasks.
        var shedRequests: Int
        var shedTasks: Int
        var enqueue: LatencyHistogram
        /// Latency of the accepted requests alone: what an overloaded coordinator bounds.
        var acceptedEnqueue: LatencyHistogram
        var timeline: [Second]
        var elapsed: Duration
        var startedAtMillis: Int64
        /// Cancels answered 200 (the task was cancelled) and 409 (it had finished first).
        var cancelled: Int
        var cancelTooLate: Int
    }

    private struct Tally: Sendable {
        var ids: [Int64] = []
        var submitted = 0
        var failed = 0
        var errors: [String: Int] = [:]
        var shedRequests = 0
        var shedTasks = 0
        var total = LatencyHistogram()
        var accepted = LatencyHistogram()
        var interval = LatencyHistogram()
        var acceptedInInterval = 0
        var failedInInterval = 0
        var inFlight = 0
        var cancelled = 0
        var cancelTooLate = 0
    }

    let plan: LoadPlan
    private let next = Atomic<Int>(0)
    /// Set once a claim found the load over.
    private let exhausted = Atomic<Bool>(false)
    private let tally = Mutex(Tally())
    private let sendersDone = Atomic<Bool>(false)
    private let timeline = Mutex<[Second]>([])
    private let loadEnded = Mutex<ContinuousClock.Instant?>(nil)
    private let http: HTTPClient
    /// The ids to cancel (``cancelIfDue(index:ids:)``), sent apart from the submissions so that a
    /// sender never waits for a cancel and the event-loop senders can keep the soak's submissions.
    private let cancels = AsyncStream<Int64>.makeStream()

    init(plan: LoadPlan) {
        self.plan = plan
        // One connection per sender: the client's default pool (8 per host) would cap the load.
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: plan.concurrency)
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(30))
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Requests the run may send at most (from `count`), or nil for no limit.
    private var requestLimit: Int? { plan.count.map { ($0 + plan.batch - 1) / plan.batch } }

    func run() async -> Result {
        let startedAtMillis = WallClock.nowMillis()
        let start = ContinuousClock.now
        let end = plan.duration.map { start + $0 }
        // Requests per second = tasks per second / tasks per request.
        let interval = plan.rate.map { Duration.nanoseconds(Int64((1e9 * Double(plan.batch) / $0).rounded())) }
        let schedule = Schedule(start: start, end: end, interval: interval)
        await withTaskGroup(of: Void.self) { outer in
            outer.addTask {
                if self.sendsFromEventLoops {
                    await EventLoopSender.run(self, schedule: schedule, connections: self.plan.concurrency)
                } else {
                    await withTaskGroup(of: Void.self) { group in
                        for _ in 0..<self.plan.concurrency {
                            group.addTask { await self.sendUntilDone(schedule) }
                        }
                    }
                }
                self.loadEnded.withLock { $0 = ContinuousClock.now }
                self.sendersDone.store(true, ordering: .releasing)
                self.cancels.continuation.finish()
            }
            outer.addTask {
                // Each cancel on its own, so that a slow one holds up neither the others nor a sender;
                // the run ends after the last one is answered, and the report counts them all. A
                // discarding group: a plain one keeps every finished child until it is awaited (an
                // hour's 36,000 cancels held 500 MiB).
                await withDiscardingTaskGroup { group in
                    for await id in self.cancels.stream {
                        group.addTask { await self.cancel(id) }
                    }
                }
            }
            outer.addTask {
                var second = 0
                var machine = MachineCounters()
                while !self.sendersDone.load(ordering: .acquiring) {
                    second += 1
                    try? await Task.sleep(until: start + .seconds(second))
                    let point = self.closeSecond(second, machine: machine.next())
                    self.timeline.withLock { $0.append(point) }
                    if self.plan.progress { self.printProgress(point) }
                }
            }
        }
        try? await http.shutdown()
        let final = tally.withLock { $0 }
        return Result(
            acceptedIDs: final.ids, submittedTasks: final.submitted, failedTasks: final.failed, errors: final.errors,
            shedRequests: final.shedRequests, shedTasks: final.shedTasks, enqueue: final.total, acceptedEnqueue: final.accepted, timeline: timeline.withLock { $0 }, elapsed: (loadEnded.withLock { $0 } ?? .now) - start,
            startedAtMillis: startedAtMillis, cancelled: final.cancelled, cancelTooLate: final.cancelTooLate)
    }

    /// When the load starts and ends, and the interval between requests (open loop) or nil (closed).
    struct Schedule: Sendable {
        var start: ContinuousClock.Instant
        var end: ContinuousClock.Instant?
        var interval: Duration?
    }

    /// Single POSTs go out from NIO's event loops (``EventLoopSender``): the request path the load
    /// generator must keep cheap, so that it is never what a single-POST run measures. The soak's
    /// cancels too: they go out on their own (``cancelIfDue(index:ids:)``), so its submissions need not
    /// take the general client (three times the CPU: 31 % of a core at 1,000 requests a second).
    var sendsFromEventLoops: Bool { plan.batch == 1 && EventLoopSender.target(of: plan.baseURL) != nil }

    /// Whether no request is left to claim (the count is reached or the end has passed).
    func isOver(_ schedule: Schedule) -> Bool {
        if exhausted.load(ordering: .relaxed) { return true }
        if let limit = requestLimit, next.load(ordering: .relaxed) >= limit { return true }
        if let end = schedule.end, ContinuousClock.now >= end { return true }
        return false
    }

    /// A sender that could not connect: counted among the errors (so the run fails), no request with it.
    func recordConnectionFailure(_ cause: String) {
        tally.withLock { tally in
            tally.errors[cause, default: 0] += 1
            tally.failed += 1
        }
    }

    /// The next request a sender should send, and when (its intended time), or nil when the load is over.
    func claim(_ schedule: Schedule) -> (index: Int, intended: ContinuousClock.Instant)? {
        let index = next.add(1, ordering: .relaxed).oldValue
        if let limit = requestLimit, index >= limit {
            exhausted.store(true, ordering: .relaxed)
            return nil
        }
        let intended = schedule.interval.map { schedule.start + $0 * index } ?? .now
        if let end = schedule.end, intended >= end {
            exhausted.store(true, ordering: .relaxed)
            return nil
        }
        return (index, intended)
    }

    private func sendUntilDone(_ schedule: Schedule) async {
        while let (index, intended) = claim(schedule) {
            if schedule.interval != nil { try? await Task.sleep(until: intended) }
            await send(index: index, intended: intended)
        }
    }

    private func closeSecond(_ second: Int, machine: MachineSecond?) -> Second {
        tally.withLock { tally in
            let point = Second(
                second: second, accepted: tally.acceptedInInterval, failed: tally.failedInInterval, inFlight: tally.inFlight,
                enqueueP50Milliseconds: tally.interval.milliseconds(at: 50), enqueueP99Milliseconds: tally.interval.milliseconds(at: 99),
                machine: machine)
            tally.interval = LatencyHistogram()
            tally.acceptedInInterval = 0
            tally.failedInInterval = 0
            return point
        }
    }

    private func printProgress(_ point: Second) {
        let errors = tally.withLock { $0.failed }
        let line = String(
            format: "%5d s  %8d tasks/s accepted  %6d in flight  enqueue p50 %7.2f ms  p99 %8.2f ms  failed %d (total %d)\n",
            point.second, point.accepted, point.inFlight, point.enqueueP50Milliseconds, point.enqueueP99Milliseconds, point.failed, errors)
        // Unbuffered, so the line shows when stdout is a pipe or a file (print would hold it back).
        FileHandle.standardOutput.write(Data(line.utf8))
    }

    /// Tasks in request `index`: `batch`, except a last, partial request under `count`.
    func tasks(in index: Int) -> Int {
        guard let count = plan.count else { return plan.batch }
        return min(plan.batch, count - index * plan.batch)
    }

    func body(index: Int, tasks: Int) -> (path: String, body: String) {
        if plan.batch == 1 { return ("/v1/tasks", LoadShape.entry(at: index, in: plan.mix).json) }
        let items = (0..<tasks).map { LoadShape.entry(at: index * plan.batch + $0, in: plan.mix).json }
        return ("/v1/tasks/batch", "{\"tasks\":[" + items.joined(separator: ",") + "]}")
    }

    private func send(index: Int, intended: ContinuousClock.Instant) async {
        let count = tasks(in: index)
        let (path, text) = body(index: index, tasks: count)
        var request = HTTPClientRequest(url: plan.baseURL + path)
        request.method = .POST
        if let token = plan.token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: text))
        willSend(tasks: count)
        var cause: String?
        var shed = false
        var ids: [Int64] = []
        do {
            let response = try await http.execute(request, timeout: .seconds(30))
            let reply = try await response.body.collect(upTo: 16 << 20)
            if response.status.code == 201 || response.status.code == 200 {
                ids = Self.acceptedIDs(in: reply, single: plan.batch == 1)
                if ids.count != count { cause = "reply without \(count) ids" }
            } else if Self.isShed(status: Int(response.status.code), hasRetryAfter: response.headers.first(name: "Retry-After") != nil, body: reply) {
                shed = true
            } else {
                cause = "HTTP \(response.status.code)"
            }
        } catch let error as HTTPClientError {
            cause = error == .deadlineExceeded || error == .readTimeout ? "timeout" : "\(error)"
        } catch {
            cause = "\(type(of: error))"
        }
        record(tasks: count, ids: ids, cause: cause, shed: shed, intended: intended)
        if cause == nil, !shed { cancelIfDue(index: index, ids: ids) }
    }

    /// Asks for the cancel of request `index`'s task right after it was accepted, when the plan cancels
    /// every n-th single POST; the cancel goes out on its own, through the general client.
    func cancelIfDue(index: Int, ids: [Int64]) {
        guard plan.batch == 1, let every = plan.cancelEvery, index % every == 0, let id = ids.first else { return }
        cancels.continuation.yield(id)
    }

    /// The coordinator's shedding (429 or 503 with `Retry-After` and the code `overloaded`), not a
    /// dependency's outage.
    static func isShed(status: Int, hasRetryAfter: Bool, body: ByteBuffer) -> Bool {
        (status == 429 || status == 503) && hasRetryAfter && String(buffer: body).contains("\"overloaded\"")
    }

    /// Counts a request as sent (in flight).
    func willSend(tasks: Int) {
        tally.withLock {
            $0.inFlight += 1
            $0.submitted += tasks
        }
    }

    /// Counts a request's outcome: accepted (with its ids), shed, or failed with `cause`; its latency
    /// runs from its intended time.
    func record(tasks count: Int, ids: [Int64], cause: String?, shed: Bool, intended: ContinuousClock.Instant) {
        let latency = ContinuousClock.now - intended
        let milliseconds = latency.seconds * 1000
        tally.withLock { tally in
            tally.inFlight -= 1
            // A failed request counts in the latency too (a timeout at its full wait): leaving it out
            // would let an overloaded run show a low P99.
            tally.total.record(milliseconds: milliseconds)
            tally.interval.record(milliseconds: milliseconds)
            if shed {
                tally.shedRequests += 1
                tally.shedTasks += count
            } else if let cause {
                tally.failed += count
                tally.failedInInterval += count
                tally.errors[cause, default: 0] += 1
            } else {
                tally.ids.append(contentsOf: ids)
                tally.acceptedInInterval += ids.count
                tally.accepted.record(milliseconds: milliseconds)
            }
        }
    }

    private func cancel(_ id: Int64) async {
        var request = HTTPClientRequest(url: plan.baseURL + "/v1/tasks/\(id)/cancel")
        request.method = .POST
        if let token = plan.token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        guard let response = try? await http.execute(request, timeout: .seconds(30)) else { return }
        _ = try? await response.body.collect(upTo: 1 << 20)
        tally.withLock { tally in
            if response.status.code == 200 { tally.cancelled += 1 } else if response.status.code == 409 { tally.cancelTooLate += 1 }
        }
    }

    /// The ids in a reply: `{"id":…}` for a single submission, `{"tasks":[{"id":…},…]}` for a batch.
    /// Scans for `"id":` rather than decoding the whole reply: at the ceiling the load generator shares
    /// the machine with what it measures, and a full JSON decode per reply would cost it throughput.
    static func acceptedIDs(in reply: ByteBuffer, single: Bool) -> [Int64] {
        reply.withUnsafeReadableBytes { bytes in
            var ids: [Int64] = []
            let key: [UInt8] = Array("\"id\":".utf8)
            var index = 0
            let end = bytes.count
            while index + key.count < end {
                if bytes[index] == key[0], bytes[index + 1] == key[1], bytes[index + 2] == key[2], bytes[index + 3] == key[3], bytes[index + 4] == key[4] {
                    index += key.count
                    while index < end, bytes[index] == UInt8(ascii: " ") { index += 1 }
                    var value: Int64 = 0
                    var digits = 0
                    while index < end, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                        value = value * 10 + Int64(bytes[index] - UInt8(ascii: "0"))
                        index += 1
                        digits += 1
                    }
                    if digits > 0 { ids.append(value) }
                    if single { break }
                } else {
                    index += 1
                }
            }
            return ids
        }
    }
}
