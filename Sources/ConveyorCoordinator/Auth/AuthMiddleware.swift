import Hummingbird

/// Finds which configured token a request carries (`Authorization: Bearer <secret>`) and puts it in the
/// request context; routes then ask for the scope they need (``CoordinatorRequestContext/require(_:for:)``).
///
/// `required`: under `/v1`, a missing or unknown token is 401. On `/status` and `/ready` a request may
/// come without one and gets the redacted view.
struct AuthMiddleware: RouterMiddleware {
    let tokens: [APIToken]
    let required: Bool

    init(tokens: [APIToken], required: Bool) {
        self.tokens = tokens
        self.required = required
    }

    func handle(
        _ request: Request, context: CoordinatorRequestContext,
        next: (Request, CoordinatorRequestContext) async throws -> Response
    ) async throws -> Response {
        var context = context
        if let header = request.headers.value(of: .authorization), header.hasPrefix("Bearer ") {
            let presented = Array(header.utf8.dropFirst("Bearer ".utf8.count))
            context.token = Self.match(presented, in: tokens)
        }
        if required && context.token == nil { throw APIError.unauthorized }
        context.authenticated = true
        return try await next(request, context)
    }

    /// Compares against every token in time that depends only on the lengths, never on where the first
    /// differing byte is or which token matched, so response timing does not leak a secret's prefix.
    static func match(_ presented: [UInt8], in tokens: [APIToken]) -> APIToken? {
        var found: APIToken?
        for token in tokens {
            var difference: UInt8 = presented.count == token.secret.count ? 0 : 1
            for index in 0..<token.secret.count {
                let byte = index < presented.count ? presented[index] : 0
                difference |= byte ^ token.secret[index]
            }
            if difference == 0 { found = token }
        }
        return found
    }
}
