@testable import ConveyorCoordinator
import ConveyorCore
import Foundation
import Testing

@Suite("Request validation (no I/O)")
struct TaskSubmissionParserTests {
    let parser = TaskSubmissionParser(registry: TaskTypeRegistry([
        TaskTypeDefinition(name: "noop", handler: "noop"),
        TaskTypeDefinition(name: "resize", queue: "images", maxAttempts: 5, handler: "command", command: ["/bin/true"]),
    ]))

    private func single(_ json: String, key: String? = nil) throws(APIError) -> NewTaskView {
        NewTaskView(try parser.parseSingle(Data(json.utf8), correlationID: "c", idempotencyKey: key, now: 1))
    }

    @Test("a valid submission takes the type's queue and max_attempts unless given")
    func defaultsFromType() throws {
        let task = try single(#"{"type":"resize","params":{"w":1}}"#)
        #expect(task.queue == "images" && task.maxAttempts == 5 && task.params == #"{"w":1}"#)
        let overridden = try single(#"{"type":"resize","queue":"default","max_attempts":2}"#)
        #expect(overridden.queue == "default" && overridden.maxAttempts == 2 && overridden.params == "{}")
    }

    @Test("each kind of bad input maps to its status and code", arguments: [
        ("{", 400, "malformed_json"),
        (#"{"type":1}"#, 400, "invalid_field"),
        (#"{"params":{}}"#, 400, "missing_field"),
        (#"{"type":"noop","params":"x"}"#, 400, "invalid_field"),
        (#"{"type":"noop","max_attempts":101}"#, 400, "invalid_field"),
        (#"{"type":"nope"}"#, 422, "unknown_task_type"),
        (#"{"type":"noop","queue":"nowhere"}"#, 422, "unknown_queue"),
        (#"{"type":"noop","priority":"urgent"}"#, 400, "invalid_field"),
        (#"{"type":"noop","priority":3}"#, 400, "invalid_field"),
        (#"{"type":"noop","priority":true}"#, 400, "invalid_field"),
        (#"{"type":"noop","limit_key":""}"#, 400, "invalid_field"),
        (#"{"type":"noop","limit_key":"two words"}"#, 400, "invalid_field"),
        (#"{"type":"noop","limit_key":7}"#, 400, "invalid_field"),
    ])
    func badInput(json: String, status: Int, code: String) {
        do {
            _ = try single(json)
            Issue.record("accepted \(json)")
        } catch {
            #expect(Int(error.status.code) == status)
            #expect(error.code == code)
        }
    }

    @Test("messages name the field path and what was expected (as the Codable decoder worded them, the body itself named)", arguments: [
        (#"{"type":null}"#, "type: expected a string, got null"),
        (#"{"type":1}"#, "type: expected a string"),
        (#"{"params":{}}"#, "type: required"),
        (#"[1]"#, "the body: expected an object"),
        (#"{"type":"noop","max_attempts":1.5}"#, "max_attempts: expected an integer"),
        (#"{"type":"noop","tags":{"k":1}}"#, "tags.k: expected a string"),
        (#"{"type":"noop","tags":[]}"#, "tags: expected an object"),
        (#"{"type":"noop","delay":true}"#, "delay: expected a string"),
        (#"{"type":"noop","priority":[2]}"#, "priority: expected a string"),
        ("null", "the body: expected an object, got null"),
        (#"{"type":"noop","queue":7}"#, "queue: expected a string"),
    ])
    func fieldMessages(json: String, message: String) {
        do {
            _ = try single(json)
            Issue.record("accepted \(json)")
        } catch {
            #expect(error.message == message)
            #expect(error.status == .badRequest)
        }
    }

    @Test("a body that is not UTF-8, or not JSON, is malformed_json; null members count as absent")
    func malformedAndNulls() throws {
        for body in [Data([0x7B, 0x22, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3A, 0x22, 0xFF, 0xFE, 0x22, 0x7D]), Data("{\"type\":".utf8), Data()] {
            do {
                _ = try parser.parseSingle(body, correlationID: "c", idempotencyKey: nil, now: 1)
                Issue.record("accepted \(Array(body))")
            } catch {
                #expect(error.code == "malformed_json")
            }
        }
        #expect(try single("\u{FEFF}" + #"{"type":"noop"}"#).queue == "default", "a byte-order mark is skipped")
        let task = try single(#"{"type":"noop","params":null,"queue":null,"tags":null,"delay":null,"priority":null,"max_attempts":2.0}"#)
        #expect(task.params == "{}" && task.queue == "default" && task.maxAttempts == 2)
        let batch = #"{"tasks":[{"type":"noop"},{"type":"noop","unknown":[1,{"x":2}]}],"extra":true}"#
        #expect(try parser.parseBatch(Data(batch.utf8), correlationID: "c", idempotencyKey: nil, now: 1).count == 2)
        for (body, code) in [(#"{"tasks":{}}"#, "invalid_field"), (#"{}"#, "missing_field"), (#"{"tasks":[]}"#, "empty_batch")] {
            do {
                _ = try parser.parseBatch(Data(body.utf8), correlationID: "c", idempotencyKey: nil, now: 1)
                Issue.record("accepted \(body)")
            } catch {
                #expect(error.code == code, "\(body): \(error.message)")
            }
        }
    }

    @Test("priority reads as a name or 0–2 (normal when absent); limit_key is kept as given")
    func priorityAndLimitKey() throws {
        let parse = { (json: String) throws(APIError) -> NewTask in
            try self.parser.parseSingle(Data(json.utf8), correlationID: "c", idempotencyKey: nil, now: 1)
        }
        #expect(try parse(#"{"type":"noop"}"#).priority == .normal)
        #expect(try parse(#"{"type":"noop","priority":"high"}"#).priority == .high)
        #expect(try parse(#"{"type":"noop","priority":0}"#).priority == .low)
        #expect(try parse(#"{"type":"noop","limit_key":"customer-42"}"#).limitKey == "customer-42")
        #expect(try parse(#"{"type":"noop"}"#).limitKey == nil)
    }

    @Test("a batch element at fault is named by index, in the message and the index field")
    func batchIndex() {
        let body = #"{"tasks":[{"type":"noop"},{"type":"noop","max_attempts":"x"}]}"#
        do {
            _ = try parser.parseBatch(Data(body.utf8), correlationID: "c", idempotencyKey: nil, now: 1)
            Issue.record("accepted a bad batch")
        } catch {
            #expect(error.index == 1)
            #expect(error.message.hasPrefix("tasks[1].max_attempts"))
        }
    }

    @Test("a batch element that is not an object, or has no type, is named by its index", arguments: [
        (#"{"tasks":[{"type":"noop"},1]}"#, "tasks[1]: expected an object"),
        (#"{"tasks":[{"type":"noop"},null]}"#, "tasks[1]: expected an object, got null"),
        (#"{"tasks":[{}]}"#, "tasks[0].type: required"),
    ])
    func batchElementNames(body: String, message: String) {
        do {
            _ = try parser.parseBatch(Data(body.utf8), correlationID: "c", idempotencyKey: nil, now: 1)
            Issue.record("accepted \(body)")
        } catch {
            #expect(error.message == message)
        }
    }

    @Test("a body with several bad members gets the same 400 whatever their order: the first of a fixed order")
    func severalBadMembers() {
        // The order the members are checked in: type, queue, max_attempts, idempotency_key, run_at,
        // callback_url, limit_key, tags, delay, priority.
        let bad = [#""priority":[2]"#, #""delay":true"#, #""tags":[]"#, #""limit_key":7"#, #""max_attempts":"x""#, #""queue":7"#]
        for rotation in 0..<bad.count {
            let members = Array(bad[rotation...] + bad[..<rotation])
            for body in ["{" + (members + [#""type":"noop""#]).joined(separator: ",") + "}",
                         #"{"tasks":[{"type":"noop"},{"#  + ([#""type":"noop""#] + members).joined(separator: ",") + "}]}"] {
                do {
                    _ = body.hasPrefix(#"{"tasks""#)
                        ? try parser.parseBatch(Data(body.utf8), correlationID: "c", idempotencyKey: nil, now: 1).count
                        : try parser.parseSingle(Data(body.utf8), correlationID: "c", idempotencyKey: nil, now: 1).maxAttempts
                    Issue.record("accepted \(body)")
                } catch {
                    let expected = body.hasPrefix(#"{"tasks""#) ? "tasks[1].queue: expected a string" : "queue: expected a string"
                    #expect(error.message == expected, "\(body)")
                }
            }
        }
    }

    @Test("a batch Idempotency-Key gives element i the key <key>:<i>, unless the element has its own")
    func batchKeys() throws {
        let body = #"{"tasks":[{"type":"noop"},{"type":"noop","idempotency_key":"own"}]}"#
        let tasks = try parser.parseBatch(Data(body.utf8), correlationID: "c", idempotencyKey: "k", now: 1)
        #expect(tasks.map(\.idempotencyKey) == ["k:0", "own"])
    }

    @Test("the error body is the documented JSON shape")
    func errorShape() throws {
        let body = APIError.unprocessable("unknown_task_type", "type: unknown \"x\"", index: 3).body
        let json = try JSONValue.parse(body)
        #expect(json["error"]?["code"]?.stringValue == "unknown_task_type")
        #expect(json["error"]?["message"]?.stringValue == "type: unknown \"x\"")
        #expect(json["error"]?["index"]?.intValue == 3)
    }

    @Test("bearer tokens match only exactly, and the match names the token")
    func tokenMatching() {
        let tokens = [APIToken(name: "a", scopes: [.read], secret: "alpha"), APIToken(name: "b", scopes: [.submit], secret: "beta")]
        #expect(AuthMiddleware.match(Array("beta".utf8), in: tokens)?.name == "b")
        #expect(AuthMiddleware.match(Array("bet".utf8), in: tokens) == nil)
        #expect(AuthMiddleware.match(Array("betaa".utf8), in: tokens) == nil)
        #expect(AuthMiddleware.match([], in: tokens) == nil)
        // Lengths differing by a multiple of 256 must not cancel out.
        #expect(AuthMiddleware.match(Array("beta".utf8) + Array(repeating: 0, count: 256), in: tokens) == nil)
    }

    @Test("params holding U+0000 and idempotency keys holding control characters are refused with 400")
    func refusesWhatPostgresCannotStore() {
        #expect(throws: APIError.self) { try self.single(#"{"type":"noop","params":{"a":"x\u0000y"}}"#) }
        #expect(throws: APIError.self) { try self.single(#"{"type":"noop","params":{"a\u0000":1}}"#) }
        #expect(throws: APIError.self) { try self.single(#"{"type":"noop"}"#, key: "abc\u{0}x") }
        #expect(throws: APIError.self) { try self.single(#"{"type":"noop"}"#, key: "line\nbreak") }
    }
}

/// The fields of a NewTask the tests look at.
struct NewTaskView {
    var queue: String
    var maxAttempts: Int
    var params: String
    init(_ task: ConveyorPostgres.NewTask) {
        queue = task.queue
        maxAttempts = task.maxAttempts
        params = task.params
    }
}

import ConveyorPostgres

@Suite("Tags on submit (no I/O)")
struct TagValidationTests {
    let parser = TaskSubmissionParser(registry: TaskTypeRegistry([TaskTypeDefinition(name: "noop", handler: "noop")]))

    private func tags(_ json: String) throws(APIError) -> String? {
        try parser.parseSingle(Data("{\"type\":\"noop\",\"tags\":\(json)}".utf8), correlationID: "c", idempotencyKey: nil, now: 1).tags
    }

    @Test("tags are kept as compact JSON with sorted keys; none or empty is nil")
    func kept() throws {
        #expect(try tags(#"{"tenant":"acme","source":"web/v2"}"#) == #"{"source":"web/v2","tenant":"acme"}"#)
        #expect(try tags("{}") == nil)
        #expect(try tags("null") == nil)
    }

    @Test("too many, a bad key, a long value, a control character or a non-string value is a 400 naming the tag", arguments: [
        ("{" + (0...20).map { "\"k\($0)\":\"v\"" }.joined(separator: ",") + "}", "invalid_tags"),
        (#"{"has space":"v"}"#, "invalid_tags"),
        (#"{"":"v"}"#, "invalid_tags"),
        ("{\"\(String(repeating: "k", count: 65))\":\"v\"}", "invalid_tags"),
        ("{\"k\":\"\(String(repeating: "v", count: 257))\"}", "invalid_tags"),
        (#"{"k":"line\nbreak"}"#, "invalid_tags"),
        (#"{"k":1}"#, "invalid_field"),
        (#"["k"]"#, "invalid_field"),
    ])
    func refused(json: String, code: String) {
        do {
            _ = try tags(json)
            Issue.record("accepted \(json)")
        } catch {
            #expect(error.status == .badRequest)
            #expect(error.code == code)
            #expect(error.message.contains("tags"), "the message names the field: \(error.message)")
        }
    }

    @Test("in a batch, the element at fault is named")
    func batchIndex() {
        let body = #"{"tasks":[{"type":"noop","tags":{"a":"b"}},{"type":"noop","tags":{"bad key":"x"}}]}"#
        do {
            _ = try parser.parseBatch(Data(body.utf8), correlationID: "c", idempotencyKey: nil, now: 1)
            Issue.record("accepted")
        } catch {
            #expect(error.index == 1 && error.message.hasPrefix("tasks[1].tags"))
        }
    }
}

@Suite("Progress over HTTP: the body (no I/O)")
struct ProgressBodyTests {
    @Test("a body with progress and an attempt is read; bad ones are 400s with a code")
    func parse() throws {
        let (progress, attempt) = try TaskProgressRoutes.parse(Data(#"{"fraction":0.5,"message":"half","attempt":2}"#.utf8))
        #expect(progress.fraction == 0.5 && progress.message == "half" && attempt == 2)
        for (body, code) in [("nope", "malformed_json"), ("{}", "invalid_progress"), (#"{"fraction":2}"#, "invalid_progress"),
                             (#"{"fraction":0.1,"attempt":0}"#, "invalid_field"), (#"{"pct":1}"#, "invalid_progress")] {
            #expect(throws: APIError.self) { try TaskProgressRoutes.parse(Data(body.utf8)) }
            do { _ = try TaskProgressRoutes.parse(Data(body.utf8)) } catch { #expect(error.code == code, "\(body)") }
        }
    }
}

@Suite("The timeline of a task (no I/O)")
struct TaskTimelineTests {
    @Test("a fast attempt's outcome row also shows its dispatch and start; a running row shows its dispatch")
    func foldedStart() {
        let row = HistoryRow(
            eventID: "5-1-succeeded", status: "succeeded", attempt: 1, agent: "a1", atMillis: 3000,
            detail: #"{"cid":"c","result":{"ok":true},"started":2000,"dispatched":1000}"#, foldsStart: true)
        let items = TaskTimeline.items(row)
        #expect(items.map { $0.kind } == ["dispatched", "running", "succeeded"])
        #expect(Set(items.map { $0.cursor }) == ["3000.5-1-succeeded"], "one row, one cursor")
        #expect(items.last?.isTerminal == true)
        let succeeded = try? JSONValue.parse(items[2].json)
        #expect(succeeded?["result"]?["ok"] == JSONValue.bool(true) && succeeded?["agent"]?.stringValue == "a1")
        var separate = row
        separate.foldsStart = false
        #expect(TaskTimeline.items(separate).map { $0.kind } == ["succeeded"])
    }

    @Test("a retry shows its error and when the next attempt is due; progress shows the report")
    func retryAndProgress() throws {
        let retry = TaskTimeline.items(HistoryRow(
            eventID: "5-1-retrying", status: "retrying", attempt: 1, agent: "a1", atMillis: 3000,
            detail: #"{"cid":"c","error":"boom","next_attempt":4500}"#, foldsStart: false))
        let json = try JSONValue.parse(retry[0].json)
        #expect(json["error"]?.stringValue == "boom" && json["next_attempt_at"]?.stringValue == "1970-01-01T00:00:04.500Z")
        #expect(retry[0].isTerminal == false)
        let progress = TaskTimeline.items(HistoryRow(
            eventID: "5-1-progress-2500", status: "progress", attempt: 1, agent: "a1", atMillis: 2500,
            detail: #"{"cid":"c","progress":{"fraction":0.5,"attempt":1}}"#, foldsStart: false))
        #expect(try JSONValue.parse(progress[0].json)["progress"]?["fraction"] == .double(0.5))
    }

    @Test("a cursor survives its text form and orders rows by time, then event id")
    func cursor() {
        let cursor = HistoryCursor(atMillis: 1_700_000_000_000, eventID: "12-1-progress-1700000000000")
        #expect(HistoryCursor(cursor.description) == cursor)
        #expect(HistoryCursor("x.y") == nil && HistoryCursor("12") == nil)
        #expect(HistoryCursor(atMillis: 1, eventID: "b") < HistoryCursor(atMillis: 2, eventID: "a"))
        #expect(TaskTimeline.queuedCursor < HistoryCursor(atMillis: 1, eventID: "a"))
    }
}

@Suite("Following a task's history live (no I/O)")
struct TaskFollowerTests {
    private func row(_ id: String, at: Int64, status: String = "progress") -> HistoryRow {
        HistoryRow(eventID: id, status: status, attempt: 1, agent: "a", atMillis: at, detail: #"{"cid":"c"}"#, foldsStart: false)
    }

    private func ids(_ frames: String) -> [String] {
        var parser = ServerSentEventParser()
        return parser.feed(Array(frames.utf8)).compactMap(\.id)
    }

    @Test("a step committed late with an earlier time is still sent, once, and the stream's position never goes back")
    func lateRowWithinTheOverlap() {
        var follower = TaskFollower(after: TaskTimeline.queuedCursor)
        #expect(ids(follower.take([row("e1", at: 1000), row("e3", at: 3000)])) == ["1000.e1", "3000.e3"])
        // e2 (time 2000) commits after e3 was sent; the next read starts within the overlap.
        #expect(follower.readFrom <= HistoryCursor(atMillis: 2000, eventID: "e2"))
        let again = follower.take([row("e1", at: 1000), row("e2", at: 2000), row("e3", at: 3000)])
        #expect(ids(again) == ["3000.e3"], "only e2 is new, and it carries the newest position")
        #expect(again.contains("\"kind\":\"progress\""))
        #expect(follower.take([row("e2", at: 2000), row("e3", at: 3000)]).isEmpty)
    }

    @Test("a resumed stream sends nothing at or before the client's position")
    func resumeSkipsWhatWasSeen() {
        var follower = TaskFollower(after: HistoryCursor(atMillis: 3000, eventID: "e3"))
        #expect(ids(follower.take([row("e1", at: 1000), row("e3", at: 3000), row("e4", at: 4000)])) == ["4000.e4"])
    }

    @Test("a terminal step is remembered until the task's row confirms it (a redrive may follow a dead)")
    func terminalThenRedrive() {
        var follower = TaskFollower(after: TaskTimeline.queuedCursor)
        _ = follower.take([row("t-1-dead", at: 1000, status: "dead")])
        #expect(follower.lastWasTerminal)
        _ = follower.take([row("t-1-redriven", at: 2000, status: "redriven")])
        #expect(!follower.lastWasTerminal)
    }
}

@Suite("Request validation: delay, run_at and callback_url (no I/O)")
struct ScheduledSubmissionParserTests {
    let parser = TaskSubmissionParser(
        registry: TaskTypeRegistry([TaskTypeDefinition(name: "noop", handler: "noop")]),
        webhookHosts: WebhookHostPolicy(allowedHosts: ["hooks.example.com"]))
    let now: Int64 = 1_800_000_000_000

    private func parse(_ body: String) throws(APIError) -> NewTask {
        try parser.parseSingle(Data(body.utf8), correlationID: "c", idempotencyKey: nil, now: now)
    }

    @Test("delay as text or seconds and run_at in RFC 3339 become a due time; a past time runs now")
    func dueTimes() throws {
        #expect(try parse(#"{"type":"noop","delay":"90s"}"#).runAtMillis == now + 90_000)
        #expect(try parse(#"{"type":"noop","delay":1.5}"#).runAtMillis == now + 1500)
        #expect(try parse(#"{"type":"noop","delay":"0s"}"#).runAtMillis == nil, "due now: an ordinary task")
        #expect(try parse(#"{"type":"noop","run_at":"2027-01-15T09:00:00Z"}"#).runAtMillis == 1_800_003_600_000)
        #expect(try parse(#"{"type":"noop","run_at":"2027-01-15T10:30:00.250+01:00"}"#).runAtMillis == 1_800_005_400_250)
        #expect(try parse(#"{"type":"noop","run_at":"2027-01-15T07:00:00Z"}"#).runAtMillis == nil, "in the past: runs now")
    }

    @Test("bad schedules are 400 invalid_schedule naming the field; a batch names the element")
    func badSchedules() {
        for body in [
            #"{"type":"noop","delay":"1s","run_at":"2027-01-15T09:00:00Z"}"#, #"{"type":"noop","delay":"soon"}"#,
            #"{"type":"noop","delay":-1}"#, #"{"type":"noop","delay":"367d"}"#, #"{"type":"noop","run_at":"15/01/2027"}"#,
            #"{"type":"noop","run_at":"2029-01-15T09:00:00Z"}"#, #"{"type":"noop","delay":"1e300s"}"#, #"{"type":"noop","delay":1e300}"#,
        ] {
            #expect(throws: APIError.self, "\(body)") { try parse(body) }
            do { _ = try parse(body) } catch { #expect(error.code == "invalid_schedule" && error.status == .badRequest, "\(body): \(error.message)") }
        }
        do {
            _ = try parser.parseBatch(Data(#"{"tasks":[{"type":"noop"},{"type":"noop","delay":"x"}]}"#.utf8), correlationID: "c", idempotencyKey: nil, now: now)
            Issue.record("expected a 400")
        } catch {
            #expect(error.index == 1 && error.message.hasPrefix("tasks[1].delay"))
        }
    }

    @Test("callback_url must name an allowed host over http(s): 422 invalid_callback_url otherwise")
    func callbackURLs() throws {
        #expect(try parse(#"{"type":"noop","callback_url":"https://hooks.example.com/done"}"#).callbackURL == "https://hooks.example.com/done")
        for url in ["https://10.0.0.1/x", "file:///etc/passwd", "https://hooks.example.com.evil.com/"] {
            do {
                _ = try parse("{\"type\":\"noop\",\"callback_url\":\"\(url)\"}")
                Issue.record("\(url) was accepted")
            } catch {
                #expect(error.code == "invalid_callback_url" && error.status == .unprocessableContent, "\(url)")
            }
        }
    }
}
