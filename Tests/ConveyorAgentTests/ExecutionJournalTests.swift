@testable import ConveyorAgent
import ConveyorCore
import ConveyorRedis
import Foundation
import Logging
import Synchronization
import Testing

@Suite("ExecutionJournal: a line per attempt, in the file before the attempt starts, a write per batch", .timeLimit(.minutes(1)))
struct ExecutionJournalTests {
    private static func temporaryPath() -> String {
        NSTemporaryDirectory() + "conveyor-journal-\(UUID().uuidString)"
    }

    private static func envelope(_ id: Int64, attempt: Int = 1, type: String = "t") -> TaskEnvelope {
        TaskEnvelope(id: TaskID(id), type: type, params: "{}", correlationID: "c", attempt: attempt, maxAttempts: 3, enqueuedAtMillis: 0)
    }

    @Test("a batch of starts writes the lines single starts write, in one write")
    func batchLinesMatchSingleLines() throws {
        let single = Self.temporaryPath(), batch = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: single); try? FileManager.default.removeItem(atPath: batch) }
        let envelopes = [Self.envelope(7), Self.envelope(1_234_567_890_123, attempt: 12), Self.envelope(-3, attempt: 0)]
        do {
            let journal = try ExecutionJournal(path: single)
            for envelope in envelopes {
                journal.record(taskID: envelope.id.description, attempt: envelope.attempt, agent: "agent-1", atMillis: 1_700_000_000_123)
            }
            let batched = try ExecutionJournal(path: batch)
            batched.recordStarts(of: envelopes, agent: "agent-1", atMillis: 1_700_000_000_123)
            batched.recordStarts(of: [TaskEnvelope](), agent: "agent-1", atMillis: 0)
            #expect(batched.writes == 1, "three lines, one write; an empty batch writes nothing")
        }
        let expected = try String(contentsOfFile: single, encoding: .utf8)
        #expect(expected == "7 1 agent-1 1700000000123\n1234567890123 12 agent-1 1700000000123\n-3 0 agent-1 1700000000123\n")
        #expect(try String(contentsOfFile: batch, encoding: .utf8) == expected)
    }

    private final class Seen: Sendable {
        let journaled = Mutex<[Int64: Bool]>([:])
    }

    /// Records, as each attempt starts, whether its line is in the journal already.
    private struct JournalReadingHandler: TaskHandler {
        let path: String
        let seen: Seen
        let started: AsyncStream<Void>.Continuation

        func handle(_ task: TaskContext) async throws -> JSONValue? {
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            let journaled = text.split(separator: "\n").contains { $0.hasPrefix("\(task.id.rawValue) \(task.attempt) ") }
            seen.journaled.withLock { $0[task.id.rawValue] = journaled }
            started.yield()
            return nil
        }
    }

    @Test("an executor given a read's worth of tasks journals them in one write, each line before its attempt starts")
    func executorJournalsAReadInOneWrite() async throws {
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let registry = TaskTypeRegistry([
            TaskTypeDefinition(name: "t", maxConcurrent: nil, handler: "test"),
            TaskTypeDefinition(name: "capped", maxConcurrent: nil, maxConcurrentPerAgent: 100, handler: "test"),
            TaskTypeDefinition(name: "limited", maxConcurrent: 5, handler: "test"),
        ])
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        // Never connects: the Completer only queues the outcomes (its batch is larger than the test's).
        let redis = RedisConnection(configuration: RedisConfiguration(port: 1), logger: logger)
        let gate = FlowGate(redis: redis, keys: RedisKeys(prefix: "p"), registry: registry)
        let completer = Completer(redis: redis, keys: RedisKeys(prefix: "p"), registry: registry, agentID: "a1", batchSize: 100, gate: gate, logger: logger)
        let journal = try ExecutionJournal(path: path)
        let (started, startedContinuation) = AsyncStream.makeStream(of: Void.self)
        let seen = Seen()
        let slots = SlotPool(capacity: 50)
        let handler = JournalReadingHandler(path: path, seen: seen, started: startedContinuation)
        let executor = Executor(
            handlers: ["t": handler, "capped": handler, "limited": handler], registry: registry,
            completer: completer, slots: slots, agentID: "a1", journal: journal, redis: redis, gate: gate, logger: logger)
        // 30 of a plain type, 10 of a type capped per agent (as the built-in noop), 5 of a type with a
        // cluster-wide limit (whose lines its attempts write).
        let deliveries = (1...45).map { id in
            Delivery(
                queue: "default", stream: "p:{default}:ready", entryID: "\(1_000 + id)-0",
                envelope: Self.envelope(Int64(id), type: id > 40 ? "limited" : id > 30 ? "capped" : "t"))
        }
        let run = Task { try await executor.run() }
        executor.submit(deliveries)
        var count = 0
        for await _ in started {
            count += 1
            if count == deliveries.count { break }
        }
        executor.stopAccepting()
        try await run.value
        #expect(seen.journaled.withLock { $0.count } == 45)
        #expect(seen.journaled.withLock { $0.values.allSatisfy { $0 } }, "every attempt found its line already written")
        #expect(journal.writes == 1 + 5 + 5, "one write for the plain and capped tasks of the read; a start and an end for each limited one")
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.filter { !$0.hasPrefix("end ") }.count == 45)
        #expect(lines.filter { $0.hasPrefix("end ") }.count == 5)
    }
}

@Suite("Delivery: what its entry id says")
struct DeliveryEntryIDTests {
    private func delivery(_ entryID: String) -> Delivery {
        Delivery(queue: "q", stream: "s", entryID: entryID, envelope: TaskEnvelope(
            id: TaskID(1), type: "t", params: "{}", correlationID: "c", attempt: 1, maxAttempts: 1, enqueuedAtMillis: 0))
    }

    @Test("a key is its stream and entry id together: the same id in two streams is two keys")
    func keysOfTwoStreams() {
        let keys: Set<Delivery.Key> = [
            Delivery.Key(stream: "a", entryID: "1-0"), Delivery.Key(stream: "b", entryID: "1-0"), Delivery.Key(stream: "a", entryID: "1-0"),
        ]
        #expect(keys.count == 2)
        #expect(keys.contains(Delivery.Key(stream: "b", entryID: "1-0")) && !keys.contains(Delivery.Key(stream: "c", entryID: "1-0")))
    }

    @Test("the dispatch time is the entry id's milliseconds; an id that is not a stream id has none")
    func dispatchTimeFromTheEntryID() {
        #expect(delivery("1764857246123-0").dispatchedAtMillis == 1_764_857_246_123)
        #expect(delivery("1764857246123-17").dispatchedAtMillis == 1_764_857_246_123)
        #expect(delivery("42").dispatchedAtMillis == 42)
        #expect(delivery("").dispatchedAtMillis == nil)
        #expect(delivery("-1").dispatchedAtMillis == nil)
        #expect(delivery("12a-0").dispatchedAtMillis == nil)
        #expect(delivery("99999999999999999999-0").dispatchedAtMillis == nil, "more digits than a time holds")
    }
}
