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
        #expect(try LifecycleEvent.expanded(["task": "7"]) == ["task": "7"], "an entry without `e` is left as it is")
    }

    @Test("a compact field that is cut short, lies about a length or has no name is an error naming the field")
    func malformedIsAnError() throws {
        for bad in ["task=3:12", "task=x:1", "task3:123", "=1:a", "task=1:1status", "task=99999999999:1"] {
            do {
                let fields = try LifecycleEvent.expanded(["e": bad])
                Issue.record("'\(bad)' decoded as \(fields)")
            } catch {
                #expect(error.field == "e")
            }
            do {
                let event = try LifecycleEvent(fields: ["e": bad])
                Issue.record("'\(bad)' decoded as \(event)")
            } catch {
                #expect(error.field == "e")
            }
        }
        #expect(try LifecycleEvent.expanded(["e": ""]) == [:], "no fields at all decodes (and then misses `task`)")
        do {
            _ = try LifecycleEvent(fields: ["e": ""])
            Issue.record("an empty compact event decoded")
        } catch {
            #expect(error.field == "task")
        }
    }
}
