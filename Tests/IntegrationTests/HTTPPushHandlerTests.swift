import ConveyorAgent
import ConveyorCore
import ConveyorTesting
import Foundation
import Hummingbird
import Testing

@Suite("HTTP push handler: a worker in any language behind a URL")
struct HTTPPushHandlerTests {
    private func registry(_ url: String, timeout: Duration = .seconds(30), maxAttempts: Int = 3) -> TaskTypeRegistry {
        TaskTypeRegistry([
            TaskTypeDefinition(
                name: "remote", maxConcurrent: 20, timeout: timeout, maxAttempts: maxAttempts, handler: "http",
                backoffBase: .milliseconds(50), backoffMax: .milliseconds(100), url: url),
        ])
    }

    @Test("the worker gets the task as JSON with X-Correlation-ID, and its JSON reply is the result")
    func success() async throws {
        let worker = try await TestHTTPServer.start { received, _ in
            let task = try? JSONValue.parse(received.body)
            let doubled = (task?["params"]?["n"]?.intValue ?? 0) * 2
            return .init(status: .ok, body: "{\"doubled\":\(doubled)}")
        }
        let stack = try await Stack.start(registry: registry(worker.url + "/run"))
        let reply = try await stack.post("/v1/tasks", #"{"type":"remote","params":{"n":21}}"#, headers: [("X-Correlation-ID", "push-cid")])
        let id = try #require(reply.json?["id"]?.intValue)
        #expect(try await stack.waitUntilTerminal([id])[id] == .succeeded)
        #expect(try await stack.task(id)["result"]?["doubled"]?.intValue == 42)
        let request = try #require(worker.received.first)
        #expect(request.path == "/run" && request.headers["x-correlation-id"] == "push-cid")
        let body = try JSONValue.parse(request.body)
        #expect(body["id"]?.intValue == id && body["type"]?.stringValue == "remote" && body["attempt"]?.intValue == 1)
        #expect(body["correlation_id"]?.stringValue == "push-cid" && body["deadline"]?.stringValue != nil)
        try await stack.stop()
        try await worker.stop()
    }

    @Test("a workflow node's request body carries its dependencies' results")
    func dependenciesInBody() async throws {
        let worker = try await TestHTTPServer.start { _, _ in .init(status: .ok, body: #"{"pushed":true}"#) }
        let stack = try await Stack.start(registry: TaskTypeRegistry(registry(worker.url).types.values + [
            TaskTypeDefinition(name: "noop", handler: "noop"),
        ]))
        let reply = try await stack.post("/v1/workflows", #"{"name":"push","chain":[{"key":"first","type":"remote","params":{}},{"type":"remote","params":{}}]}"#)
        let id = try #require(reply.json?["id"]?.intValue)
        let first = try #require(reply.json?["nodes"]?["first"]?.intValue)
        let second = try #require(reply.json?["nodes"]?["2"]?.intValue)
        #expect(try await stack.waitUntilTerminal([first, second]) == [first: .succeeded, second: .succeeded])
        let bodies = try worker.received.map { try JSONValue.parse($0.body) }
        #expect(bodies.first { $0["id"]?.intValue == first }?["dependencies"] == nil, "a root gets none")
        let dependencies = bodies.first { $0["id"]?.intValue == second }?["dependencies"]
        #expect(dependencies?["first"]?["result"]?["pushed"] == .bool(true))
        #expect(dependencies?["first"]?["task_id"]?.intValue == first)
        _ = id
        try await stack.stop()
        try await worker.stop()
    }

    @Test("a 500 is retried, and the next attempt's success is the result")
    func serverErrorIsRetried() async throws {
        let worker = try await TestHTTPServer.start { _, count in count == 1 ? .init(status: .internalServerError, body: "boom") : .init(status: .ok, body: "{}") }
        let stack = try await Stack.start(registry: registry(worker.url))
        let id = try await stack.submit("remote")
        #expect(try await stack.waitUntilTerminal([id])[id] == .succeeded)
        #expect(try await stack.task(id)["attempts"]?.intValue == 2)
        #expect(worker.received.count == 2)
        try await stack.stop()
        try await worker.stop()
    }

    @Test("a 429 with Retry-After: 2 waits at least two seconds before the next attempt")
    func retryAfterIsHonoured() async throws {
        let worker = try await TestHTTPServer.start { _, count in
            count == 1 ? .init(status: .tooManyRequests, headers: [("Retry-After", "2")]) : .init(status: .ok, body: #"{"ok":true}"#)
        }
        let stack = try await Stack.start(registry: registry(worker.url))
        let id = try await stack.submit("remote")
        #expect(try await stack.waitUntilTerminal([id])[id] == .succeeded)
        let times = worker.received.map(\.atMillis)
        try #require(times.count == 2)
        #expect(times[1] - times[0] >= 2000, "the retry came \(times[1] - times[0]) ms later")
        try await stack.stop()
        try await worker.stop()
    }

    @Test("a 400 fails the task at once, without retries, with the worker's answer as the error")
    func clientErrorIsPermanent() async throws {
        let worker = try await TestHTTPServer.start { _, _ in .init(status: .badRequest, body: "params.n is required") }
        let stack = try await Stack.start(registry: registry(worker.url))
        let id = try await stack.submit("remote")
        #expect(try await stack.waitUntilTerminal([id])[id] == .dead)
        let task = try await stack.task(id)
        #expect(task["attempts"]?.intValue == 1)
        #expect(task["error"]?.stringValue?.contains("400: params.n is required") == true, "\(task)")
        try await stack.stop()
        try await worker.stop()
    }

    @Test("a worker that hangs is stopped at the type's timeout and retried; a worker that is not there is retried too")
    func hangAndUnreachable() async throws {
        let worker = try await TestHTTPServer.start { _, count in
            count == 1 ? .init(status: .ok, body: "{}", delay: .seconds(30)) : .init(status: .ok, body: #"{"second":true}"#)
        }
        // 5 s: far below the hang, far above a healthy round trip even on a machine running every suite at once.
        let stack = try await Stack.start(registry: registry(worker.url, timeout: .seconds(5)))
        let id = try await stack.submit("remote")
        #expect(try await stack.waitUntilTerminal([id], timeout: .seconds(90))[id] == .succeeded)
        #expect(try await stack.task(id)["result"]?["second"] == .bool(true))
        try await stack.stop()

        let nowhere = try await Stack.start(registry: registry("http://127.0.0.1:9/none", maxAttempts: 2))
        let lost = try await nowhere.submit("remote")
        #expect(try await nowhere.waitUntilTerminal([lost])[lost] == .dead)
        let task = try await nowhere.task(lost)
        #expect(task["attempts"]?.intValue == 2 && task["error"]?.stringValue?.contains("could not reach the worker") == true)
        try await nowhere.stop()
        try await worker.stop()
    }
}
