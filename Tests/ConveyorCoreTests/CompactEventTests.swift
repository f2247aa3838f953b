import ConveyorCore
import Testing

@Suite("Lifecycle events in the compact form: one field on the events stream")
struct CompactEventTests {
    private func decode(_ pairs: [(String, String)]) throws -> LifecycleEvent {
        try LifecycleEvent(fields: Dictionary(uniqueKeysWithValues: pairs))
    }

    @Test("an event survives the compact form exactly, whatever its result and error hold")
    func roundTrip() throws {
        var event = LifecycleEvent(
            taskID: TaskID(42), status: .retrying, attempt: 2, agent: "agent=1:x", atMillis: 1_700_000_000_123,
            startedAtMillis: 1_700_000_000_100, result: nil, error: "line 1\nline 2=3:4 \u{0}é🚀", correlationID: "c",
            type: "t", dispatchedAtMillis: 1_700_000_000_000, nextAttemptAtMillis: 1_700_000_001_000,
            progress: try TaskProgress(fraction: 0.5, message: "half"))
        event.hasCallback = true
        let compact = event.compactFields
        #expect(compact.count == 1 && compact[0].0 == "e")
        #expect(try decode(compact) == event)
        var succeeded = event
        succeeded.status = .succeeded
        succeeded.error = nil
        succeeded.progress = nil
        succeeded.result = #"{"text":"a=1:2","empty":""}"#
        #expect(try decode(succeeded.compactFields) == succeeded)
    }

    @Test("the compact form is the spelled-out fields, packed in the same order, numbers included")
    func sameAsPackedFields() throws {
        for at: Int64 in [0, 7, 10, 99, 1_700_000_000_123, -5] {
            let event = LifecycleEvent(
                taskID: TaskID(12), status: .succeeded, attempt: 10, agent: "a", atMillis: at, startedAtMillis: at,
                result: "", correlationID: String(repeating: "c", count: 123), type: "t", dispatchedAtMillis: at)
            let packed = event.compactFields[0].1
            #expect(packed == event.fields.map { "\($0.0)=\($0.1.utf8.count):\($0.1)" }.joined())
            #expect(try decode(event.compactFields) == event)
        }
    }

    @Test("a field the reader does not know (from a newer agent) is ignored in either form")
    func unknownFieldsIgnored() throws {
        let event = LifecycleEvent(taskID: TaskID(9), status: .succeeded, attempt: 1, agent: "a", atMillis: 5, correlationID: "c", type: "t")
        let packed = event.compactFields[0].1 + "zz=2:ok"
        #expect(try LifecycleEvent(fields: ["e": packed]) == event)
        #expect(try decode(event.fields + [("zz", "ok")]) == event)
    }

    @Test("the spelled-out fields that Lua scripts write are still read")
    func spelledOutStillRead() throws {
        let event = LifecycleEvent(taskID: TaskID(7), status: .queued, attempt: 0, agent: "", atMillis: 5, correlationID: "c", type: "t")
        #expect(try decode(event.fields) == event)
        #expect(try LifecycleEvent.events(inEntry: Dictionary(uniqueKeysWithValues: event.fields)).map { try $0.get() } == [event])
    }

    @Test("a compact field that is cut short, lies about a length or has no name is an error naming the field")
    func malformedIsAnError() throws {
        for bad in ["task=3:12", "task=x:1", "task3:123", "=1:a", "task=1:1status", "task=99999999999:1"] {
            do {
                let event = try LifecycleEvent(fields: ["e": bad])
                Issue.record("'\(bad)' decoded as \(event)")
            } catch {
                #expect(error.field == "e")
            }
        }
        do {
            _ = try LifecycleEvent(fields: ["e": ""])
            Issue.record("an empty compact event decoded")
        } catch {
            #expect(error.field == "task", "no fields at all decodes, and then misses `task`")
        }
    }

    private func event(_ id: Int64, _ status: TaskStatus, result: String? = nil) -> LifecycleEvent {
        LifecycleEvent(taskID: TaskID(id), status: status, attempt: 1, agent: "a-1", atMillis: 1_700_000_000_000 + id, result: result, correlationID: "c\(id)", type: "t")
    }

    @Test("a batch entry holds its events framed one after the other, and reads back in order")
    func batchRoundTrip() throws {
        let events = [event(1, .running), event(1, .succeeded, result: #"{"a":"1:2"}"#), event(2, .dead), event(3, .succeeded, result: "\"é🚀\"")]
        let entry = [LifecycleEvent.batchField: events.map(\.framedCompact).joined()]
        #expect(try LifecycleEvent.events(inEntry: entry).map { try $0.get() } == events)
        #expect(events[0].framedCompact == "\(events[0].compactFields[0].1.utf8.count):" + events[0].compactFields[0].1)
        #expect(LifecycleEvent.events(inEntry: [LifecycleEvent.batchField: ""]).isEmpty)
    }

    @Test("a bad event in a batch fails alone; a broken frame fails the rest of the batch, not what came before")
    func batchFailures() throws {
        let good = event(1, .succeeded)
        let badEvent = "8:task=x:1"  // a frame of the right length around a malformed event
        let mixed = LifecycleEvent.events(inEntry: ["b": good.framedCompact + badEvent + good.framedCompact])
        #expect(mixed.count == 3)
        #expect(try mixed[0].get() == good && (try? mixed[1].get()) == nil && (try mixed[2].get()) == good)
        let broken = LifecycleEvent.events(inEntry: ["b": good.framedCompact + "999:task=1:1"])
        #expect(broken.count == 2)
        #expect(try broken[0].get() == good)
        if case .failure(let error) = broken[1] { #expect(error.field == "b") } else { Issue.record("a broken frame decoded") }
    }
}
