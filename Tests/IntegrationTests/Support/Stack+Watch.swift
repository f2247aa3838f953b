import AsyncHTTPClient
import ConveyorCore
import Foundation
import NIOCore
import NIOHTTP1

/// Following a task's live stream and polling for its state, as a caller would.
extension Stack {
    /// What one connection to `GET /v1/tasks/{id}/stream` received.
    struct StreamReading: Sendable {
        var status: Int
        var events: [ServerSentEvent]
        /// The server ended the stream (rather than the reader leaving early).
        var endedByServer: Bool
    }

    /// Opens the task's stream and reads until the server ends it, or until `leaveWhen` says to leave
    /// (then the connection is dropped mid-task).
    func readStream(
        _ id: Int64, lastEventID: String? = nil, client: HTTPClient = .shared, timeout: Duration = .seconds(60),
        leaveWhen: @Sendable ([ServerSentEvent]) -> Bool = { _ in false }
    ) async throws -> StreamReading {
        var request = HTTPClientRequest(url: baseURL + "/v1/tasks/\(id)/stream")
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        if let lastEventID { request.headers.add(name: "Last-Event-ID", value: lastEventID) }
        let response = try await client.execute(request, timeout: .milliseconds(timeout.milliseconds))
        guard response.status == .ok else { return StreamReading(status: Int(response.status.code), events: [], endedByServer: true) }
        var parser = ServerSentEventParser()
        var events: [ServerSentEvent] = []
        for try await buffer in response.body {
            events += parser.feed(buffer.readableBytesView)
            if leaveWhen(events) { return StreamReading(status: 200, events: events, endedByServer: false) }
        }
        return StreamReading(status: 200, events: events, endedByServer: true)
    }

    /// Polls `GET /v1/tasks/{id}` until `condition` holds (a test helper, not how callers should wait).
    func task(_ id: Int64, within timeout: Duration = .seconds(20), until condition: (JSONValue) -> Bool) async throws -> JSONValue {
        let deadline = ContinuousClock.now + timeout
        while true {
            let task = try await self.task(id)
            if condition(task) { return task }
            if ContinuousClock.now > deadline { throw StackError("task \(id) never matched; last: \(task.serialized)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Every item of the task's history, following `next_cursor` with pages of `limit`.
    func history(_ id: Int64, limit: Int = 100) async throws -> [JSONValue] {
        var items: [JSONValue] = []
        var cursor: String?
        repeat {
            let path = "/v1/tasks/\(id)/events?limit=\(limit)" + (cursor.map { "&cursor=\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0)" } ?? "")
            let reply = try await get(path)
            guard reply.status == 200, let json = reply.json else { throw StackError("GET \(path) got \(reply.status): \(reply.body)") }
            items += json["events"]?.arrayValue ?? []
            cursor = json["next_cursor"]?.stringValue
        } while cursor != nil
        return items
    }
}
