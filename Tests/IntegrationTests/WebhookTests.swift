import ConveyorAgent
import ConveyorCoordinator
import ConveyorCore
import ConveyorPostgres
import ConveyorTesting
import Foundation
import Hummingbird
import Testing

@Suite("Completion webhooks")
struct WebhookTests {
    private static let secret = "test-webhook-secret-0123456789"
    private let registry = TaskTypeRegistry([
        TaskTypeDefinition(name: "echo", maxConcurrent: 50, handler: "echo"),
        TaskTypeDefinition(name: "fail", maxConcurrent: 10, maxAttempts: 1, handler: "fail"),
        TaskTypeDefinition(name: "slow", maxConcurrent: 10, handler: "sleep"),
    ])

    private func stack(retryFor: Duration = .seconds(86_400), timeout: Duration = .seconds(10)) async throws -> Stack {
        try await Stack.start(registry: registry) { configuration in
            configuration.webhookHosts = WebhookHostPolicy(allowedHosts: ["127.0.0.1"])
            configuration.webhookSecret = Self.secret
            configuration.webhookRetryFor = retryFor
            configuration.webhookTimeout = timeout
            configuration.webhookBackoff = Backoff(base: .milliseconds(100), maximum: .seconds(2))
        }
    }

    private func valid(_ received: TestHTTPServer.Received) -> Bool {
        guard let header = received.headers["conveyor-signature"] else { return false }
        return WebhookSignature.verify(header: header, body: received.body, secret: Self.secret, nowSeconds: WallClock.nowMillis() / 1000)
    }

    /// Waits until `condition` holds for the server's requests.
    private func wait(_ server: TestHTTPServer, timeout: Duration = .seconds(30), until condition: ([TestHTTPServer.Received]) -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition(server.received) {
            guard ContinuousClock.now < deadline else { throw StackError("webhook condition not met; got \(server.received.count) requests") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    @Test("a finished task's record is POSTed to its callback_url, signed, with its correlation id; the try is in its history")
    func deliversSignedRecord() async throws {
        let receiver = try await TestHTTPServer.start { _, _ in .init(status: .noContent) }
        let stack = try await stack()
        let reply = try await stack.post("/v1/tasks", """
            {"type":"echo","params":{"x":1},"tags":{"customer":"acme"},"callback_url":"\(receiver.url)/done"}
            """, headers: [("X-Correlation-ID", "webhook-cid-1")])
        #expect(reply.status == 201)
        let id = try #require(reply.json?["id"]?.intValue)
        try await wait(receiver) { $0.count == 1 }
        let delivery = receiver.received[0]
        #expect(delivery.path == "/done")
        #expect(valid(delivery), "signature \(delivery.headers["conveyor-signature"] ?? "none")")
        #expect(!WebhookSignature.verify(header: delivery.headers["conveyor-signature"]!, body: delivery.body + " ", secret: Self.secret, nowSeconds: WallClock.nowMillis() / 1000))
        #expect(delivery.headers["x-correlation-id"] == "webhook-cid-1")
        #expect(delivery.headers["conveyor-event"] == "task.finished")
        let body = try JSONValue.parse(delivery.body)
        #expect(body["task"]?["id"]?.intValue == id)
        #expect(body["task"]?["status"]?.stringValue == "succeeded")
        #expect(body["task"]?["result"]?["x"]?.intValue == 1)
        #expect(body["task"]?["attempts"]?.intValue == 1 && body["task"]?["type"]?.stringValue == "echo")
        #expect(body["task"]?["tags"]?["customer"]?.stringValue == "acme")
        #expect(body["task"]?["correlation_id"]?.stringValue == "webhook-cid-1")
        #expect(body["task"]?["finished_at"]?.stringValue != nil && body["task"]?["started_at"]?.stringValue != nil)
        #expect(body["delivery_id"]?.stringValue == delivery.headers["conveyor-delivery"])
        // The try is recorded (after the delivery's transaction commits).
        let deadline = ContinuousClock.now + .seconds(10)
        var webhookItems: [JSONValue] = []
        while webhookItems.isEmpty && ContinuousClock.now < deadline {
            let events = try await stack.get("/v1/tasks/\(id)/events").json?["events"]?.arrayValue ?? []
            webhookItems = events.filter { $0["kind"]?.stringValue == "webhook" }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(webhookItems.first?["outcome"]?.stringValue == "delivered" && webhookItems.first?["status_code"]?.intValue == 204)
        #expect(try await WebhookStore(client: stack.coordinator.postgres).pendingCount() == 0)
        try await stack.stop()
        try await receiver.stop()
    }

    @Test("a receiver that fails its first tries gets the delivery on a later one; every try is recorded")
    func retriesUntilDelivered() async throws {
        let receiver = try await TestHTTPServer.start { _, count in
            count <= 3 ? .init(status: .internalServerError, body: "not yet") : .init(status: .ok)
        }
        let stack = try await stack()
        let id = try await stack.submit("fail", extra: ",\"callback_url\":\"\(receiver.url)\"")
        try await wait(receiver) { $0.count == 4 }
        #expect(receiver.received.allSatisfy(valid))
        #expect(receiver.received.allSatisfy { $0.headers["conveyor-delivery"] == receiver.received[0].headers["conveyor-delivery"] })
        let body = try JSONValue.parse(receiver.received[3].body)
        #expect(body["task"]?["status"]?.stringValue == "dead" && body["task"]?["error"]?.stringValue != nil)
        // The last try is recorded after the receiver answered, in a transaction of its own: wait for it.
        let deadline = ContinuousClock.now + .seconds(30)
        var outcomes: [String] = []
        while outcomes.count < 4 && ContinuousClock.now < deadline {
            let events = try await stack.get("/v1/tasks/\(id)/events").json?["events"]?.arrayValue ?? []
            outcomes = events.filter { $0["kind"]?.stringValue == "webhook" }.compactMap { $0["outcome"]?.stringValue }
            if outcomes.count < 4 { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(outcomes == ["failed", "failed", "failed", "delivered"], "\(outcomes)")
        try await stack.stop()
        try await receiver.stop()
    }

    @Test("a receiver that is down for a minute gets every delivery once it is back, each signed")
    func receiverDownForAMinute() async throws {
        // Reserve a port, then close it: connections are refused until the receiver starts on it.
        let probe = try await TestHTTPServer.start { _, _ in .init(status: .ok) }
        let port = probe.port
        try await probe.stop()
        let stack = try await stack()
        var ids: [Int64] = []
        for index in 0..<20 {
            ids.append(try await stack.submit("echo", params: "{\"n\":\(index)}", extra: ",\"callback_url\":\"http://127.0.0.1:\(port)/hook\""))
        }
        #expect(try await stack.waitUntilTerminal(ids).values.allSatisfy { $0 == .succeeded })
        try await Task.sleep(for: .seconds(60))
        let receiver = try await TestHTTPServer.start(port: port) { _, _ in .init(status: .ok) }
        try await wait(receiver, timeout: .seconds(30)) { received in
            Set(received.compactMap { try? JSONValue.parse($0.body)["task"]?["id"]?.intValue }).count == ids.count
        }
        #expect(receiver.received.allSatisfy(valid))
        try await stack.stop()
        try await receiver.stop()
    }

    @Test("a receiver that hangs holds up only its own delivery: another task's webhook goes out meanwhile")
    func hangingReceiverDoesNotBlockOthers() async throws {
        let hanging = try await TestHTTPServer.start { _, _ in .init(status: .ok, delay: .seconds(12)) }
        let quick = try await TestHTTPServer.start { _, _ in .init(status: .ok) }
        let stack = try await stack(timeout: .seconds(15))
        _ = try await stack.submit("echo", extra: ",\"callback_url\":\"\(hanging.url)\"")
        try await wait(hanging) { $0.count == 1 }
        let submitted = ContinuousClock.now
        _ = try await stack.submit("echo", extra: ",\"callback_url\":\"\(quick.url)\"")
        try await wait(quick, timeout: .seconds(10)) { $0.count == 1 }
        let took = ContinuousClock.now - submitted
        // Below the first receiver's 12 s hang is the point; 9 s leaves room for a loaded machine (3.5 s and
        // 8.3 s seen in fresh-clone CI runs, the second with Chromium beside the suite).
        #expect(took < .seconds(9), "the second webhook took \(took) while the first receiver hung for 12 s")
        try await stack.stop()
        try await hanging.stop()
        try await quick.stop()
    }

    @Test("cancelling a task with a callback delivers its cancelled record")
    func cancelDelivers() async throws {
        let receiver = try await TestHTTPServer.start { _, _ in .init(status: .ok) }
        let stack = try await stack()
        let id = try await stack.submit("slow", params: #"{"ms":10000}"#, extra: ",\"callback_url\":\"\(receiver.url)\"")
        #expect(try await stack.postRetryingUnavailable("/v1/tasks/\(id)/cancel", "").status == 200)
        try await wait(receiver) { $0.count >= 1 }
        #expect(try JSONValue.parse(receiver.received[0].body)["task"]?["status"]?.stringValue == "cancelled")
        try await stack.stop()
        try await receiver.stop()
    }

    @Test("a delivery past its retry time is given up and recorded so")
    func givesUp() async throws {
        let receiver = try await TestHTTPServer.start { _, _ in .init(status: .serviceUnavailable) }
        let stack = try await stack(retryFor: .seconds(2))
        let id = try await stack.submit("echo", extra: ",\"callback_url\":\"\(receiver.url)\"")
        let deadline = ContinuousClock.now + .seconds(20)
        var outcomes: [String] = []
        while !outcomes.contains("gave_up") && ContinuousClock.now < deadline {
            let events = try await stack.get("/v1/tasks/\(id)/events").json?["events"]?.arrayValue ?? []
            outcomes = events.filter { $0["kind"]?.stringValue == "webhook" }.compactMap { $0["outcome"]?.stringValue }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(outcomes.last == "gave_up", "\(outcomes)")
        #expect(try await WebhookStore(client: stack.coordinator.postgres).pendingCount() == 0)
        try await stack.stop()
        try await receiver.stop()
    }

    @Test("a callback_url outside the allowed hosts, or not http(s), is refused with 422; with webhooks off every one is")
    func refusesDisallowedURLs() async throws {
        let stack = try await stack()
        for url in ["http://169.254.169.254/latest", "ftp://127.0.0.1/x", "http://user:pw@127.0.0.1/x", "not a url"] {
            let reply = try await stack.post("/v1/tasks", "{\"type\":\"echo\",\"callback_url\":\"\(url)\"}")
            #expect(reply.status == 422 && reply.json?["error"]?["code"]?.stringValue == "invalid_callback_url", "\(url): \(reply.body)")
        }
        try await stack.stop()
        let off = try await Stack.start(registry: registry)
        let reply = try await off.post("/v1/tasks", #"{"type":"echo","callback_url":"http://127.0.0.1:9/x"}"#)
        #expect(reply.status == 422 && reply.body.contains("webhooks are off"))
        try await off.stop()
    }
}
