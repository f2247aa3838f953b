import ConveyorCore
import Testing

@Suite("Progress reports")
struct ProgressTests {
    @Test("a report needs at least one part, and each part is checked against its range")
    func validation() throws {
        #expect(throws: ProgressError.self) { try TaskProgress() }
        #expect(throws: ProgressError.self) { try TaskProgress(fraction: 1.5) }
        #expect(throws: ProgressError.self) { try TaskProgress(fraction: -0.1) }
        #expect(throws: ProgressError.self) { try TaskProgress(fraction: .nan) }
        #expect(throws: ProgressError.self) { try TaskProgress(step: 5, totalSteps: 4) }
        #expect(throws: ProgressError.self) { try TaskProgress(totalSteps: 0) }
        #expect(throws: ProgressError.self) { try TaskProgress(message: String(repeating: "x", count: TaskProgress.maximumMessageBytes + 1)) }
        #expect(throws: ProgressError.self) { try TaskProgress(message: "a\u{0}b") }
        let full = try TaskProgress(fraction: 0.25, step: 1, totalSteps: 4, message: "resizing")
        #expect(full.fraction == 0.25 && full.step == 1 && full.totalSteps == 4 && full.message == "resizing")
    }

    @Test("a JSON report takes fraction, step, total_steps and message, and names an unknown field")
    func fromJSON() throws {
        let progress = try TaskProgress(json: try JSONValue.parse(#"{"fraction":1,"step":3,"total_steps":3,"message":"done"}"#))
        #expect(progress == (try TaskProgress(fraction: 1, step: 3, totalSteps: 3, message: "done")))
        #expect(throws: ProgressError("unknown field 'percent' (known: fraction, step, total_steps, message)")) {
            try TaskProgress(json: try JSONValue.parse(#"{"percent":50}"#))
        }
        #expect(throws: ProgressError("step must be an integer")) { try TaskProgress(json: try JSONValue.parse(#"{"step":1.5}"#)) }
        #expect(throws: ProgressError("message must be a string")) { try TaskProgress(json: try JSONValue.parse(#"{"message":3}"#)) }
        #expect(throws: ProgressError.self) { try TaskProgress(json: .array([])) }
    }

    @Test("as stored, a report carries its attempt and time")
    func storedForm() throws {
        let json = try TaskProgress(fraction: 0.5, message: "half \"way\"").json(attempt: 2, atMillis: 1_700_000_000_123)
        #expect(json == #"{"fraction":0.5,"message":"half \"way\"","attempt":2,"updated_at":"2023-11-14T22:13:20.123Z"}"#)
        #expect(try JSONValue.parse(json)["attempt"]?.intValue == 2)
    }

    @Test("a progress event survives the events stream; its id differs from the attempt's status events and from its other reports")
    func progressEventRoundTrip() throws {
        let progress = try TaskProgress(fraction: 0.75, step: 3, totalSteps: 4, message: "almost")
        let event = LifecycleEvent(
            taskID: TaskID(7), status: .running, attempt: 1, agent: "a", atMillis: 1000, correlationID: "c", type: "t", progress: progress)
        let decoded = try LifecycleEvent(fields: Dictionary(uniqueKeysWithValues: event.fields))
        #expect(decoded == event)
        #expect(decoded.isProgress)
        var later = event
        later.atMillis = 2000
        let running = LifecycleEvent(taskID: TaskID(7), status: .running, attempt: 1, agent: "a", atMillis: 1000, correlationID: "c", type: "t")
        #expect(Set([event.eventID, later.eventID, running.eventID]).count == 3)
        #expect(!running.isProgress)
    }

    @Test("a retrying event carries when its next attempt is due, and an attempt's dispatch time")
    func retryAndDispatchTimes() throws {
        let event = LifecycleEvent(
            taskID: TaskID(8), status: .retrying, attempt: 1, agent: "a", atMillis: 1000, error: "boom", correlationID: "c", type: "t",
            dispatchedAtMillis: 900, nextAttemptAtMillis: 3000)
        let decoded = try LifecycleEvent(fields: Dictionary(uniqueKeysWithValues: event.fields))
        #expect(decoded.nextAttemptAtMillis == 3000 && decoded.dispatchedAtMillis == 900)
    }
}

@Suite("Progress throttle: the latest report, about once a second")
struct ProgressThrottleTests {
    let start = ContinuousClock.now

    @Test("the first report goes out at the next flush; later ones wait out the interval and only the latest is kept")
    func coalesces() throws {
        var throttle = ProgressThrottle<String, ContinuousClock.Instant>(interval: .seconds(1))
        throttle.report("a", try TaskProgress(fraction: 0.1))
        #expect(throttle.due(now: start).map(\.1.fraction) == [0.1])
        throttle.report("a", try TaskProgress(fraction: 0.2))
        throttle.report("a", try TaskProgress(fraction: 0.3))
        #expect(throttle.due(now: start + .milliseconds(500)).isEmpty)
        #expect(throttle.due(now: start + .milliseconds(999)).isEmpty)
        #expect(throttle.due(now: start + .seconds(1)).map(\.1.fraction) == [0.3])
        #expect(throttle.due(now: start + .seconds(5)).isEmpty, "nothing new, nothing sent")
    }

    @Test("attempts are throttled apart from each other")
    func perKey() throws {
        var throttle = ProgressThrottle<String, ContinuousClock.Instant>(interval: .seconds(1))
        throttle.report("a", try TaskProgress(step: 1))
        _ = throttle.due(now: start)
        throttle.report("a", try TaskProgress(step: 2))
        throttle.report("b", try TaskProgress(step: 9))
        #expect(throttle.due(now: start + .milliseconds(100)).map(\.0) == ["b"])
    }

    @Test("finishing an attempt hands back its report not sent yet, and forgets the attempt")
    func finishReturnsPending() throws {
        var throttle = ProgressThrottle<String, ContinuousClock.Instant>(interval: .seconds(1))
        throttle.report("a", try TaskProgress(fraction: 0.5))
        _ = throttle.due(now: start)
        throttle.report("a", try TaskProgress(fraction: 1))
        #expect(throttle.finish("a")?.fraction == 1)
        #expect(throttle.count == 0)
        #expect(throttle.finish("a") == nil)
    }

    @Test("keys idle past the given time are forgotten, so reports without an end stay bounded")
    func forgetsIdle() throws {
        var throttle = ProgressThrottle<Int, ContinuousClock.Instant>(interval: .seconds(1))
        throttle.report(1, try TaskProgress(fraction: 0.5))
        throttle.report(2, try TaskProgress(fraction: 0.5))
        _ = throttle.due(now: start)
        throttle.report(2, try TaskProgress(fraction: 0.6))
        #expect(throttle.forgetIdle(now: start + .seconds(60), idle: .seconds(60)) == [1])
        #expect(throttle.count == 1, "a key with a report pending is kept")
    }
}

@Suite("Server-Sent Events parsing")
struct ServerSentEventParserTests {
    @Test("events come out whole however the bytes are split; comments are skipped; data lines join")
    func chunking() {
        let text = "retry: 1000\n\n: keep-alive\n\nid: 1.a\nevent: running\ndata: {\"x\":1}\n\nid: 2.b\r\nevent: progress\r\ndata: one\r\ndata: two\r\n\r\n"
        let bytes = Array(text.utf8)
        for split in 1..<bytes.count {
            var parser = ServerSentEventParser()
            let events = parser.feed(bytes[..<split]) + parser.feed(bytes[split...])
            #expect(events == [
                ServerSentEvent(id: "1.a", event: "running", data: "{\"x\":1}"),
                ServerSentEvent(id: "2.b", event: "progress", data: "one\ntwo"),
            ])
        }
    }
}
