import ConveyorCore
import Testing

@Suite("TaskStatus: forward-only progress")
struct TaskStatusTests {
    @Test("terminal statuses beat every non-terminal one, whatever the attempt")
    func terminalBeatsEverything() {
        for terminal in TaskStatus.allCases where terminal.isTerminal {
            for other in TaskStatus.allCases where !other.isTerminal {
                #expect(terminal.progress(attempt: 1) > other.progress(attempt: 99))
            }
        }
    }

    @Test("within an attempt: queued < running < retrying; a later attempt beats an earlier one")
    func orderWithinAndAcrossAttempts() {
        #expect(TaskStatus.queued.progress(attempt: 1) < TaskStatus.running.progress(attempt: 1))
        #expect(TaskStatus.running.progress(attempt: 1) < TaskStatus.retrying.progress(attempt: 1))
        #expect(TaskStatus.retrying.progress(attempt: 1) < TaskStatus.running.progress(attempt: 2))
        #expect(TaskStatus.queued.progress(attempt: 0) < TaskStatus.running.progress(attempt: 1))
    }

    @Test("a late running event never overwrites succeeded")
    func lateRunningLoses() {
        #expect(TaskStatus.running.progress(attempt: 1) < TaskStatus.succeeded.progress(attempt: 1))
    }
}

@Suite("Stream entries and lifecycle events")
struct EnvelopeTests {
    @Test("a task envelope survives encoding to stream fields and back")
    func envelopeRoundTrip() throws {
        let envelope = TaskEnvelope(id: TaskID(42), type: "resize", params: "{\"w\":10}", correlationID: "c1", attempt: 2, maxAttempts: 3, enqueuedAtMillis: 1_700_000_000_000)
        let decoded = try TaskEnvelope(fields: Dictionary(uniqueKeysWithValues: envelope.fields))
        #expect(decoded == envelope)
    }

    @Test("a workflow node's dependencies travel in its entry and come back unchanged")
    func dependenciesRoundTrip() throws {
        let dependencies = #"{"fetch":{"task_id":7,"status":"succeeded","result":{"n":1}}}"#
        let envelope = TaskEnvelope(
            id: TaskID(43), type: "join", params: "{}", correlationID: "c2", attempt: 1, maxAttempts: 3, enqueuedAtMillis: 1,
            dependencies: dependencies)
        #expect(envelope.fields.last! == ("deps", dependencies))
        #expect(try TaskEnvelope(fields: Dictionary(uniqueKeysWithValues: envelope.fields)).dependencies == dependencies)
        let plain = TaskEnvelope(id: TaskID(44), type: "t", params: "{}", correlationID: "c", attempt: 1, maxAttempts: 1, enqueuedAtMillis: 1)
        #expect(!plain.fields.contains { $0.0 == "deps" }, "a plain task carries no deps field")
    }

    @Test("an entry with a missing or malformed field is rejected with the field's name")
    func envelopeErrors() {
        #expect(throws: EnvelopeError(field: "type", reason: "missing")) {
            try TaskEnvelope(fields: ["id": "1", "params": "{}", "cid": "c", "attempt": "1", "max": "3", "enq": "0"])
        }
        #expect(throws: EnvelopeError(field: "id", reason: "not a task id")) {
            try TaskEnvelope(fields: ["id": "x", "type": "t", "params": "{}", "cid": "c", "attempt": "1", "max": "3", "enq": "0"])
        }
        #expect(throws: EnvelopeError(field: "attempt", reason: "must be at least 1")) {
            try TaskEnvelope(fields: ["id": "1", "type": "t", "params": "{}", "cid": "c", "attempt": "0", "max": "3", "enq": "0"])
        }
    }

    @Test("an entry's fields decode in any order, every optional one included; unknown names are ignored and a repeated name keeps its last value")
    func envelopeFromFieldList() throws {
        var envelope = TaskEnvelope(
            id: TaskID(45), type: "llm", params: #"{"p":1}"#, correlationID: "c3", attempt: 2, maxAttempts: 5, enqueuedAtMillis: 17,
            hasCallback: true, priority: .high, limitKey: "customer-9", dependencies: #"{"a":{}}"#)
        envelope.rateReservedAt = 1_000
        envelope.rateSlotAt = 2_000
        let fields = envelope.fields.map { StreamField($0.0, $0.1) }
        #expect(try TaskEnvelope(fields: fields) == envelope)
        #expect(try TaskEnvelope(fields: fields.reversed()) == envelope)
        #expect(try TaskEnvelope(fields: envelope.scheduledFields.map { StreamField($0.0, $0.1) }) == envelope, "sched is not the agent's")
        #expect(try TaskEnvelope(fields: fields + [StreamField("attempt", "3")]).attempt == 3)
        #expect(throws: EnvelopeError(field: "enq", reason: "missing")) {
            try TaskEnvelope(fields: fields.filter { $0.name != "enq" })
        }
        #expect(throws: EnvelopeError(field: "max", reason: "not an integer")) {
            try TaskEnvelope(fields: fields + [StreamField("max", "many")])
        }
        #expect(throws: EnvelopeError(field: "pri", reason: "not a priority")) {
            try TaskEnvelope(fields: fields + [StreamField("pri", "9")])
        }
    }

    @Test("a lifecycle event survives encoding, and its id is the same for a replay")
    func eventRoundTrip() throws {
        let event = LifecycleEvent(taskID: TaskID(7), status: .succeeded, attempt: 1, agent: "a1", atMillis: 5, startedAtMillis: 3, result: "{\"ok\":true}", error: nil, correlationID: "c", type: "noop")
        let decoded = try LifecycleEvent(fields: Dictionary(uniqueKeysWithValues: event.fields))
        #expect(decoded == event)
        #expect(event.eventID == "7-1-succeeded")
        var replay = event
        replay.atMillis = 99
        #expect(replay.eventID == event.eventID)
    }

    @Test("an event id written as bytes is the same id, for a status and for a progress report")
    func eventIDBytes() throws {
        var event = LifecycleEvent(taskID: TaskID(123_456_789), status: .dead, attempt: 12, agent: "a1", atMillis: 1_760_000_000_123, correlationID: "c", type: "noop")
        var bytes: [UInt8] = []
        event.writeEventID(to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == event.eventID)
        event.progress = try TaskProgress(step: 1)
        bytes = []
        event.writeEventID(to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == event.eventID)
        #expect(event.eventID == "123456789-12-progress-1760000000123")
    }
}
