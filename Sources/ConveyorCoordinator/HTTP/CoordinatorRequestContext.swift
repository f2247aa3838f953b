import HTTPTypes
import Hummingbird
import Logging

/// Per-request state: Hummingbird's core storage, the request's correlation id and the token it carries.
public struct CoordinatorRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// From `X-Correlation-ID` when it is usable, otherwise made fresh; echoed in the response.
    public var correlationID: String = ""
    /// The configured token the request presented (nil: none, or authentication is disabled).
    public var token: APIToken?
    /// Whether the auth middleware ran; when it did not, authentication is disabled and every scope is
    /// granted (`CONVEYOR_AUTH_DISABLED`, trusted networks).
    public var authenticated = false
    /// The console session the request's cookie proved (console routes only).
    public var consoleSession: ConsoleSessions.Session?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
    }

    /// Whether the request may do what `scope` allows.
    public func allows(_ scope: APIScope) -> Bool {
        guard authenticated else { return true }
        return token?.allows(scope) == true
    }

    /// Throws 403 unless the request's token has `scope`; `action` says what was refused.
    public func require(_ scope: APIScope, for action: String) throws {
        guard allows(scope) else { throw APIError.forbidden(token: token?.name, scope: scope, action: action) }
    }

    /// Logs an operator action with the token that did it (never its secret).
    public func logAdminAction(_ action: String, target: String) {
        logger.notice("admin action", metadata: [
            "action": "\(action)", "target": "\(target)", "token": "\(token?.name ?? "(auth disabled)")",
            "correlation_id": "\(correlationID)",
        ])
    }
}

extension HTTPField.Name {
    static let correlationID = HTTPField.Name("X-Correlation-ID")!
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
    /// Sent by an EventSource that reconnects: the id of the last event it received.
    static let lastEventID = HTTPField.Name("Last-Event-ID")!
    static let idempotentReplayed = HTTPField.Name("Idempotent-Replayed")!
}
