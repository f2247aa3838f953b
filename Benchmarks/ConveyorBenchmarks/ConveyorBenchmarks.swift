import Benchmark
import ConveyorCoordinator
import ConveyorCore
import ConveyorPostgres
import ConveyorRedis
import Foundation

/// The hot path of one task, piece by piece, 500 tasks per iteration (the batch size the load generator's
/// `max` preset sends): throughput and allocations of what the coordinator and agents do per batch.
/// Run with `swift package benchmark` (see README, "Performance").
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        scalingFactor: .one,
        maxDuration: .seconds(2),
        maxIterations: 10_000)

    let batch = 500
    let now = Int64(1_760_000_000_000)
    let envelopes = (0..<batch).map { index in
        TaskEnvelope(
            id: TaskID(rawValue: Int64(1_000_000 + index)), type: "noop", params: "{\"n\":\(index)}", correlationID: "c0ffee00\(index)",
            attempt: 1, maxAttempts: 5, enqueuedAtMillis: now)
    }
    let xadds = envelopes.map { RedisConnection.xadd(stream: "conveyor:ready:default", fields: $0.fields) }

    // What XREADGROUP returns for the batch: [[stream, [[id, [field, value, …]], …]]].
    let readReply: [UInt8] = {
        var text = "*1\r\n*2\r\n$22\r\nconveyor:ready:default\r\n*\(batch)\r\n"
        func bulk(_ value: String) -> String { "$\(value.utf8.count)\r\n\(value)\r\n" }
        for (index, envelope) in envelopes.enumerated() {
            let fields = envelope.fields
            text += "*2\r\n" + bulk("\(now)-\(index)") + "*\(fields.count * 2)\r\n"
            for (field, value) in fields { text += bulk(field) + bulk(value) }
        }
        return Array(text.utf8)
    }()

    let parser = TaskSubmissionParser(registry: .builtIn)
    let singleBody = Data("{\"type\":\"noop\",\"params\":{\"n\":1}}".utf8)
    let batchBody = Data(("{\"tasks\":[" + (0..<batch).map { "{\"type\":\"noop\",\"params\":{\"n\":\($0)}}" }.joined(separator: ",") + "]}").utf8)
    let newTasks = (try? parser.parseBatch(batchBody, correlationID: "c0ffee", idempotencyKey: nil, now: now)) ?? []
    let ids = (0..<batch).map { TaskID(rawValue: Int64(1_000_000 + $0)) }
    // A batch as the Recorder reads it: each task's `running` and `succeeded`, interleaved.
    let events = (0..<batch).flatMap { index -> [LifecycleEvent] in
        let id = TaskID(rawValue: Int64(1_000_000 + index))
        return [
            LifecycleEvent(taskID: id, status: .running, attempt: 1, agent: "agent-1", atMillis: now + 1, correlationID: "c\(index)", type: "noop"),
            LifecycleEvent(taskID: id, status: .succeeded, attempt: 1, agent: "agent-1", atMillis: now + 2, correlationID: "c\(index)", type: "noop"),
        ]
    }

    Benchmark("RESP: format a pipeline of 500 XADDs") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(RESPCodec.format(xadds)) }
    }

    Benchmark("RESP: parse an XREADGROUP reply of 500 entries") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try RESPCodec.parse(readReply)) }
    }

    // How connections read replies before ReplyBuilder: hiredis' objects, converted, then freed.
    Benchmark("RESP: parse an XREADGROUP reply of 500 entries through hiredis' objects") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try RESPCodec.parseWithHiredisObjects(readReply)) }
    }

    Benchmark("Stream entry: encode 500 task envelopes as XADD commands") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(envelopes.map { RedisConnection.xadd(stream: "conveyor:ready:default", fields: $0.fields) })
        }
    }

    let parsedRead = try! RESPCodec.parse(readReply)[0].array![0].array![1].array!
    Benchmark("Stream entry: decode 500 entries into task envelopes") { benchmark in
        for _ in benchmark.scaledIterations {
            for entry in parsedRead {
                let decoded = try StreamEntry(reply: entry)
                blackHole(try TaskEnvelope(fields: decoded.fieldList ?? []))
            }
        }
    }

    Benchmark("COPY: encode 500 task rows") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(TaskStore.copyRows(zip(newTasks, ids))) }
    }

    Benchmark("COPY: encode 1,000 event history rows") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(EventStore.encodeHistory(events)) }
    }

    Benchmark("JSON: decode a single submission") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try parser.parseSingle(singleBody, correlationID: "c0ffee", idempotencyKey: nil, now: now))
        }
    }

    Benchmark("JSON: decode a batch of 500 submissions") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try parser.parseBatch(batchBody, correlationID: "c0ffee", idempotencyKey: nil, now: now))
        }
    }

    Benchmark("Status merge: coalesce 1,000 events of 500 tasks and encode the merge") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(EventStore.encodeMerge(EventStore.coalesce(events))) }
    }
}
