@testable import ConveyorAgent
import ConveyorCore
import ConveyorMetricNames
import ConveyorRedis
import Logging
import MetricsTestKit
import Testing

@Suite("Completer: what one batch asks Redis to do")
struct CompleterTests {
    private let registry = TaskTypeRegistry([
        TaskTypeDefinition(name: "t", maxAttempts: 3, handler: "noop", backoffBase: .milliseconds(100), backoffMax: .seconds(1)),
    ])

    private func completer() -> Completer {
        // Never connects: scriptCalls(for:) only builds arguments.
        let redis = RedisConnection(configuration: RedisConfiguration(port: 1), logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        return Completer(redis: redis, keys: RedisKeys(prefix: "p"), registry: registry, agentID: "a1", batchSize: 100, gate: FlowGate(redis: redis, keys: RedisKeys(prefix: "p"), registry: registry), logger: Logger(label: "test"))
    }

    private func delivery(attempt: Int, entry: String = "1-0", task: Int64 = 5) -> Delivery {
        Delivery(queue: "default", stream: "p:{default}:ready", entryID: entry, envelope: TaskEnvelope(
            id: TaskID(task), type: "t", params: "{}", correlationID: "c", attempt: attempt, maxAttempts: 3, enqueuedAtMillis: 0))
    }

    /// The first item's event, read as the Recorder reads it.
    private func firstEvent(_ arguments: [String]) throws -> LifecycleEvent {
        let framed: String
        if arguments[1] == "0" {
            #expect(arguments[3] == "1", "one framed event, for the script's batch entry")
            framed = arguments[4]
        } else {
            framed = arguments[3]
        }
        let events = LifecycleEvent.events(inEntry: [LifecycleEvent.batchField: framed])
        #expect(events.count == 1)
        return try #require(events.first).get()
    }

    @Test("a task started and finished in one batch yields one event, the outcome, carrying the start time")
    func startFoldsIntoOutcome() throws {
        let calls = completer().scriptCalls(for: [
            .started(delivery(attempt: 1), atMillis: 10),
            .finished(delivery(attempt: 1), .succeeded(result: nil), startedAtMillis: 10, atMillis: 20),
        ])
        #expect(calls.count == 1)
        let arguments = calls[0].arguments
        #expect(arguments[0] == RedisKeys.agentsGroup)
        #expect(arguments[1] == "1", "one plain completion: its entry id and its event, nothing else")
        #expect(arguments[2] == "1-0")
        #expect(arguments.count == 4)
        let event = try firstEvent(arguments)
        #expect(event.status == .succeeded && event.startedAtMillis == 10 && event.atMillis == 20)
        #expect(calls[0].keys == ["p:{default}:ready", "p:{default}:events", "p:{default}:delayed", "p:{default}:dead", "p:{default}:dead-index"])
    }

    @Test("a retryable failure before max_attempts schedules the next attempt after a backoff within the type's bounds")
    func retryGetsBackoff() throws {
        let calls = completer().scriptCalls(for: [
            .finished(delivery(attempt: 2), .failed(error: "boom", retryable: true), startedAtMillis: 1, atMillis: 2),
        ])
        let arguments = calls[0].arguments
        #expect(arguments[1] == "0", "a retry is not a plain completion")
        #expect(try firstEvent(arguments).status == .retrying)
        let n = try #require(Int(arguments[3]))
        let m = try #require(Int(arguments[4 + n]))
        let delay = try #require(Int(arguments[5 + n]))
        // Attempt 2 failed: full jitter within [0, min(1 s, 100 ms × 2)].
        #expect((0...200).contains(delay))
        let fields = Array(arguments[(6 + n)..<(5 + n + m)])
        #expect(fields.count == m - 1)
        let envelope = try TaskEnvelope(fields: Dictionary(uniqueKeysWithValues: stride(from: 0, to: fields.count, by: 2).map { (fields[$0], fields[$0 + 1]) }))
        #expect(envelope.attempt == 3)
        #expect(envelope.id == TaskID(5))
    }

    @Test("a failure on the last attempt, or a permanent one, is final: a dead letter, and nothing is scheduled")
    func finalFailures() throws {
        for (attempt, retryable) in [(3, true), (1, false)] {
            let arguments = completer().scriptCalls(for: [
                .finished(delivery(attempt: attempt), .failed(error: "boom", retryable: retryable), startedAtMillis: 1, atMillis: 2),
            ])[0].arguments
            #expect(arguments[1] == "0", "a dead letter is not a plain completion")
            let n = try #require(Int(arguments[3]))
            #expect(try firstEvent(arguments).status == .dead)
            #expect(arguments[4 + n] == "0", "no retry")
            let d = try #require(Int(arguments[5 + n]))
            #expect(d > 1)
            #expect(arguments[6 + n] == "5", "indexed by task id")
            #expect(arguments[(7 + n)...].contains("dead_reason"))
        }
    }

    @Test("plain outcomes go first, two arguments each; an outcome whose progress report shares the batch stays behind the report")
    func plainCompletionsFirst() throws {
        let progress = try TaskProgress(fraction: 0.5)
        let arguments = completer().scriptCalls(for: [
            .started(delivery(attempt: 1, entry: "3-0", task: 7), atMillis: 1),
            .finished(delivery(attempt: 1, entry: "1-0", task: 5), .succeeded(result: nil), startedAtMillis: 1, atMillis: 2),
            .progress(delivery(attempt: 1, entry: "2-0", task: 6), progress, atMillis: 3),
            .finished(delivery(attempt: 1, entry: "2-0", task: 6), .succeeded(result: nil), startedAtMillis: 1, atMillis: 4),
            .finished(delivery(attempt: 1, entry: "4-0", task: 8), .cancelled, startedAtMillis: 1, atMillis: 5),
        ])[0].arguments
        #expect(arguments[1] == "2")
        #expect([arguments[2], arguments[4]] == ["1-0", "4-0"], "task 5 and the cancelled task 8, in the batch's order")
        // Then the general items, in order: task 7's start, task 6's report, task 6's outcome.
        var general = Array(arguments[6...])
        var acks: [String] = []
        var statuses: [String] = []
        while !general.isEmpty {
            acks.append(general[0])
            #expect(general[1] == "1")
            let event = try LifecycleEvent.events(inEntry: [LifecycleEvent.batchField: general[2]]).first!.get()
            statuses.append(event.isProgress ? "progress" : event.status.rawValue)
            #expect(general[3] == "0" && general[4] == "0")
            general.removeFirst(5)
        }
        #expect(acks == ["", "", "2-0"])
        #expect(statuses == ["running", "progress", "succeeded"])
    }

    @Test("a start and its outcome in one batch stay two events when the attempt reported in between: running, the report, the outcome")
    func reportKeepsTheStartApart() throws {
        let progress = try TaskProgress(fraction: 0.5)
        let arguments = completer().scriptCalls(for: [
            .started(delivery(attempt: 1), atMillis: 10),
            .progress(delivery(attempt: 1), progress, atMillis: 11),
            .finished(delivery(attempt: 1), .succeeded(result: nil), startedAtMillis: 10, atMillis: 12),
        ])[0].arguments
        #expect(arguments[1] == "0", "no plain completion: the outcome stays behind the report")
        var general = Array(arguments[2...])
        var steps: [String] = []
        while !general.isEmpty {
            let event = try LifecycleEvent.events(inEntry: [LifecycleEvent.batchField: general[2]]).first!.get()
            steps.append("\(event.isProgress ? "progress" : event.status.rawValue)@\(event.atMillis)")
            general.removeFirst(5)
        }
        #expect(steps == ["running@10", "progress@11", "succeeded@12"])
    }

    @Test("an outcome whose attempt reported keeps its start apart even when the report went out in another batch")
    func reportedAttemptKeepsItsStart() throws {
        let arguments = completer().scriptCalls(for: [
            .started(delivery(attempt: 1), atMillis: 10),
            .finished(delivery(attempt: 1), .succeeded(result: nil), startedAtMillis: 10, atMillis: 12, reported: true),
        ])[0].arguments
        #expect(arguments[1] == "0")
        var general = Array(arguments[2...])
        var steps: [String] = []
        while !general.isEmpty {
            let event = try LifecycleEvent.events(inEntry: [LifecycleEvent.batchField: general[2]]).first!.get()
            steps.append("\(event.status.rawValue)@\(event.atMillis)")
            general.removeFirst(5)
        }
        #expect(steps == ["running@10", "succeeded@12"])
    }
}

@Suite("Completer: what a reported batch counts")
struct CompleterMetricsTests {
    private func finished(_ type: String, _ outcome: AttemptOutcome, attempt: Int = 1, started: Int64 = 100, at: Int64 = 130) -> Completer.Item {
        let delivery = Delivery(queue: "default", stream: "p:{default}:ready", entryID: "1-\(started)", envelope: TaskEnvelope(
            id: TaskID(started), type: type, params: "{}", correlationID: "c", attempt: attempt, maxAttempts: 3, enqueuedAtMillis: 40))
        return .finished(delivery, outcome, startedAtMillis: started, atMillis: at)
    }

    @Test("outcomes are counted per type and outcome; every attempt's run time is recorded, end to end only for a final outcome")
    func countsPerTypeAndOutcome() throws {
        let metrics = TestMetrics()
        Completer.recordMetrics([
            finished("a", .succeeded(result: nil)), finished("b", .succeeded(result: nil)), finished("a", .succeeded(result: nil)),
            finished("a", .failed(error: "x", retryable: true)), finished("b", .failed(error: "x", retryable: true), attempt: 3),
            finished("b", .cancelled), finished("a", .failed(error: "x", retryable: false)),
            .started(Delivery(queue: "default", stream: "s", entryID: "9-0", envelope: TaskEnvelope(
                id: TaskID(9), type: "a", params: "{}", correlationID: "c", attempt: 1, maxAttempts: 3, enqueuedAtMillis: 0)), atMillis: 1),
        ], factory: metrics)
        let completed = MetricsCatalog.tasksCompleted.name
        #expect(try metrics.expectCounter(completed, [("type", "a"), ("outcome", "succeeded")]).totalValue == 2)
        #expect(try metrics.expectCounter(completed, [("type", "a"), ("outcome", "retrying")]).totalValue == 1)
        #expect(try metrics.expectCounter(completed, [("type", "a"), ("outcome", "dead")]).totalValue == 1)
        #expect(try metrics.expectCounter(completed, [("type", "b"), ("outcome", "succeeded")]).totalValue == 1)
        #expect(try metrics.expectCounter(completed, [("type", "b"), ("outcome", "dead")]).totalValue == 1, "attempt 3 of 3 does not retry")
        #expect(try metrics.expectCounter(completed, [("type", "b"), ("outcome", "cancelled")]).totalValue == 1)
        #expect(throws: (any Error).self) { try metrics.expectCounter(completed, [("type", "b"), ("outcome", "retrying")]) }
        #expect(try metrics.expectCounter(MetricsCatalog.retries.name, [("type", "a")]).totalValue == 1)
        #expect(throws: (any Error).self) { try metrics.expectCounter(MetricsCatalog.retries.name, [("type", "b")]) }
        #expect(try metrics.expectTimer(MetricsCatalog.taskRun.name, [("type", "a")]).values == Array(repeating: 30_000_000, count: 4))
        #expect(try metrics.expectTimer(MetricsCatalog.taskRun.name, [("type", "b")]).values.count == 3)
        #expect(try metrics.expectTimer(MetricsCatalog.taskEndToEnd.name, [("type", "a")]).values == Array(repeating: 90_000_000, count: 3))
        #expect(try metrics.expectTimer(MetricsCatalog.taskEndToEnd.name, [("type", "b")]).values.count == 3)
    }
}
