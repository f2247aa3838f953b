import HTTPTypes
import Hummingbird

/// Per-request state: Hummingbird's core storage plus the request's correlation id.
public struct CoordinatorRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// From `X-Correlation-ID` when it is usable, otherwise made fresh; echoed in the response.
    public var correlationID: String = ""

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
    }
}

extension HTTPField.Name {
    static let correlationID = HTTPField.Name("X-Correlation-ID")!
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
    static let idempotentReplayed = HTTPField.Name("Idempotent-Replayed")!
}
