import AsyncHTTPClient
import ConveyorCore
import Foundation
import NIOCore

/// `handler: http`: runs a task by POSTing it to a worker service, so a worker in any language needs no
/// SDK, only an HTTP endpoint.
///
/// The request body is `{"id", "type", "attempt", "max_attempts", "params", "correlation_id", "deadline"}`,
/// plus `"dependencies"` for a workflow node (its dependencies' statuses and results by node key)
/// with `X-Correlation-ID`; the reply decides the attempt:
/// - 2xx: succeeded; a JSON body is the result (an empty one: no result).
/// - 408, 429, 5xx, a connection error or the type's timeout: a retryable failure; `Retry-After`
///   (seconds or an HTTP date) sets the least wait before the next attempt.
/// - any other 4xx: a permanent failure (retrying the same request cannot help).
///
/// One client per agent, its connections pooled and kept alive across tasks.
struct HTTPPushHandler: TaskHandler {
    let url: String
    let maxReplyBytes: Int
    let client: HTTPClient

    /// The agent's one client for push handlers: up to 256 kept-alive connections per worker host, so a
    /// type's concurrency, not the pool, is what limits parallel requests. Lives as long as the process.
    static let sharedClient = HTTPClient(
        eventLoopGroup: HTTPClient.defaultEventLoopGroup,
        configuration: HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 256),
            decompression: .disabled))

    func handle(_ task: TaskContext) async throws -> JSONValue? {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "X-Correlation-ID", value: task.correlationID)
        request.headers.add(name: "User-Agent", value: "conveyor-agent")
        request.body = .bytes(ByteBuffer(string: Self.body(for: task, nowMillis: WallClock.nowMillis())))
        let response: HTTPClientResponse
        let reply: ByteBuffer
        do {
            // The Executor stops the attempt at the type's timeout (cancelling this task, which cancels
            // the request); the client's own deadline is a backstop a little later.
            response = try await client.execute(request, timeout: .milliseconds(task.timeout.milliseconds + 1000))
            reply = try await response.body.collect(upTo: maxReplyBytes)
        } catch let error as NIOTooManyBytesError {
            throw TaskFailure("the worker's reply is larger than \(maxReplyBytes) bytes (\(error))", retryable: false)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw TaskFailure("could not reach the worker at \(url): \(error)", retryable: true)
        }
        let status = Int(response.status.code)
        let text = String(buffer: reply)
        switch status {
        case 200..<300:
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !trimmed.isEmpty else { return nil }
            do {
                return try JSONValue.parse(trimmed)
            } catch {
                throw TaskFailure("the worker answered \(status) with a body that is not JSON", retryable: false)
            }
        case 408, 429, 500..<600:
            throw TaskFailure(
                "the worker answered \(status)\(Self.excerpt(text))", retryable: true,
                retryAfter: response.headers.first(name: "Retry-After").flatMap { RetryAfter.parse($0, nowMillis: WallClock.nowMillis()) })
        default:
            throw TaskFailure("the worker answered \(status)\(Self.excerpt(text))", retryable: false)
        }
    }

    /// The request body: the task as a worker needs it.
    static func body(for task: TaskContext, nowMillis: Int64) -> String {
        var body = "{\"id\":\(task.id.rawValue),\"type\":"
        JSONValue.writeString(task.type, into: &body)
        body += ",\"attempt\":\(task.attempt),\"max_attempts\":\(task.maxAttempts),\"params\":\(task.paramsJSON),\"correlation_id\":"
        JSONValue.writeString(task.correlationID, into: &body)
        body += ",\"deadline\":\"\(UTCTime.format(millis: nowMillis + task.timeout.milliseconds))\""
        if let dependencies = task.dependenciesJSON { body += ",\"dependencies\":" + dependencies }
        return body + "}"
    }

    private static func excerpt(_ text: String) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? "" : ": " + String(trimmed.prefix(500))
    }
}
