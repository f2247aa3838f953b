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
