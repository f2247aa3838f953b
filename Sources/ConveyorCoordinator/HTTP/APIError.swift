import ConveyorCore
import ConveyorPostgres
import ConveyorRedis
import Hummingbird

/// Every error the HTTP API returns, rendered as `{"error": {"code": "…", "message": "…"}}` with the
/// right status (and `Retry-After` for 503).
public struct APIError: Error, HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    /// For batch submissions: the index of the element at fault.
    public var index: Int?
    public var retryAfterSeconds: Int?

    public init(_ status: HTTPResponse.Status, code: String, _ message: String, index: Int? = nil, retryAfterSeconds: Int? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.index = index
        self.retryAfterSeconds = retryAfterSeconds
    }

    public var headers: HTTPFields {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfterSeconds { headers[.retryAfter] = String(retryAfterSeconds) }
        return headers
    }

    public var body: String {
        var out = "{\"error\":{\"code\":"
        JSONValue.writeString(code, into: &out)
        out += ",\"message\":"
        JSONValue.writeString(message, into: &out)
        if let index { out += ",\"index\":\(index)" }
        return out + "}}"
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    // MARK: - The errors the API uses

    public static func badRequest(_ message: String, code: String = "invalid_request", index: Int? = nil) -> APIError {
        APIError(.badRequest, code: code, message, index: index)
    }

    public static let unauthorized = APIError(.unauthorized, code: "unauthorized", "missing or invalid bearer token")

    public static func forbidden(token: String?, scope: APIScope, action: String) -> APIError {
        APIError(.forbidden, code: "forbidden", "token '\(token ?? "")' lacks the \(scope.rawValue) scope needed to \(action)")
    }

    public static func notFound(_ message: String) -> APIError {
        APIError(.notFound, code: "not_found", message)
    }

    public static func payloadTooLarge(limit: Int) -> APIError {
        APIError(.contentTooLarge, code: "payload_too_large", "request body exceeds \(limit) bytes")
    }

    public static func unprocessable(_ code: String, _ message: String, index: Int? = nil) -> APIError {
        APIError(.unprocessableContent, code: code, message, index: index)
    }

    public static func unavailable(_ message: String, retryAfterSeconds: Int) -> APIError {
        APIError(.serviceUnavailable, code: "unavailable", message, retryAfterSeconds: retryAfterSeconds)
    }

    /// The coordinator shed the request (its Submitter's queue was full): nothing was stored.
    public static func overloaded(_ message: String, retryAfterSeconds: Int) -> APIError {
        APIError(.serviceUnavailable, code: "overloaded", message, retryAfterSeconds: retryAfterSeconds)
    }

    public static let internalError = APIError(.internalServerError, code: "internal", "internal error; see the coordinator's log")

    public static func conflict(_ code: String, _ message: String) -> APIError {
        APIError(.conflict, code: code, message)
    }

    /// Maps a storage failure to 503 when a dependency is unreachable, otherwise 500. The message names
    /// which dependency but never echoes a query's parameters.
    public static func from(storage error: any Error, retryAfterSeconds: Int) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case let error as SubmissionOverload:
            return .overloaded(error.description, retryAfterSeconds: retryAfterSeconds)
        case let error as SubmissionError:
            return .unavailable(error.message, retryAfterSeconds: retryAfterSeconds)
        case let error as PostgresError where error.isUnavailable:
            return .unavailable("PostgreSQL is unavailable; nothing was stored", retryAfterSeconds: retryAfterSeconds)
        case is RedisError:
            // Unreachable, but also READONLY after a failover, LOADING, OOM: all pass with time.
            return .unavailable("Redis is unavailable; nothing was stored", retryAfterSeconds: retryAfterSeconds)
        case is GroupCommitQueueError:
            return .unavailable("the coordinator is shutting down", retryAfterSeconds: retryAfterSeconds)
        default:
            // The details go to the log, never to the client: they may quote other requests' data.
            return .internalError
        }
    }
}
