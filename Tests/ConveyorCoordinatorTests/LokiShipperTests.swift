@testable import ConveyorObservability
import ConveyorTesting
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Synchronization
import Testing

/// Loki itself is not installable here (Debian's `loki` package is another program), so a small HTTP
/// server stands in for its push endpoint and records what arrives.
@Suite("Shipping logs to Loki")
struct LokiShipperTests {
    final class Received: Sendable {
        let pushes = Mutex<[(encoding: String?, body: [UInt8])]>([])
    }

    private func gunzip(_ bytes: [UInt8]) async throws -> String {
        try await ToolRun.run(["gzip", "-dc"], input: bytes).output
    }

    /// Runs `body` with a stand-in for Loki's push endpoint listening on the given port.
    private func withFakeLoki(_ body: @escaping @Sendable (Int, Received) async throws -> Void) async throws {
        let received = Received()
        let router = Router()
        router.post("loki/api/v1/push") { request, _ -> Response in
            let bytes = try await request.body.collect(upTo: 1 << 24)
            received.pushes.withLock { $0.append((request.headers[.contentEncoding], Array(buffer: bytes))) }
            return Response(status: .noContent)
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            try await body(try #require(client.port), received)
        }
    }

    @Test("lines are pushed in gzip batches, one stream per level, labelled by service and level only")
    func pushesBatches() async throws {
        try await withFakeLoki { port, received in
            let shipper = LokiShipper(url: "http://127.0.0.1:\(port)/", service: "coordinator")
            shipper.enqueue(level: .info, line: #"{"msg":"task accepted","correlation_id":"c-42","task_id":"7"}"# + "\n")
            shipper.enqueue(level: .warning, line: #"{"msg":"attempt failed","correlation_id":"c-42"}"# + "\n")
            // What the service's loop does every interval (a cancelled run would cut a push short).
            await shipper.flush()

            let pushes = received.pushes.withLock { $0 }
            let push = try #require(pushes.first)
            #expect(push.encoding == "gzip")
            let text = try await gunzip(push.body)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            let streams = try #require(json["streams"] as? [[String: Any]])
            #expect(streams.count == 2, "one stream per level")
            for stream in streams {
                let labels = try #require(stream["stream"] as? [String: String])
                #expect(Set(labels.keys) == ["service", "level"], "only service and level are labels")
                #expect(labels["service"] == "coordinator")
                let values = try #require(stream["values"] as? [[String]])
                #expect(values.allSatisfy { $0.count == 2 && Int64($0[0]) != nil && $0[1].contains("c-42") && !$0[1].hasSuffix("\n") })
            }
            #expect(shipper.droppedLines == 0)
        }
    }

    @Test("the running service pushes what was logged within its interval")
    func serviceShipsOnItsOwn() async throws {
        try await withFakeLoki { port, received in
            let shipper = LokiShipper(url: "http://127.0.0.1:\(port)", service: "agent", interval: .milliseconds(50))
            let running = Task { try await shipper.run() }
            shipper.enqueue(level: .info, line: #"{"msg":"attempt succeeded","correlation_id":"c-7"}"#)
            for _ in 0..<200 where received.pushes.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(20)) }
            running.cancel()
            _ = try? await running.value
            let push = try #require(received.pushes.withLock { $0.first })
            let text = try await gunzip(push.body)
            #expect(text.contains("c-7"))
        }
    }

    @Test("when Loki is away, lines are dropped and counted instead of piling up or blocking the caller")
    func dropsWhenLokiIsAway() async throws {
        let shipper = LokiShipper(url: "http://127.0.0.1:9/", service: "agent", capacity: 100, batchSize: 50, interval: .milliseconds(20),
            pushTimeout: .milliseconds(200))
        for index in 0..<250 { shipper.enqueue(level: .info, line: "{\"n\":\(index)}") }
        #expect(shipper.droppedLines == 150, "beyond the buffer's capacity")
        await shipper.flush()
        #expect(shipper.droppedLines == 200, "a batch Loki did not take is dropped, and the rest waits for the next interval")
        await shipper.flush()
        #expect(shipper.droppedLines == 250)
    }
}
