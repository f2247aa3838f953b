import Hummingbird

/// Requires `Authorization: Bearer <token>` with one of the configured tokens.
struct AuthMiddleware: RouterMiddleware {
    /// Tokens as bytes, so the comparison touches no String machinery.
    let tokens: [[UInt8]]

    init(tokens: [String]) {
        self.tokens = tokens.map { Array($0.utf8) }
    }

    func handle(
        _ request: Request, context: CoordinatorRequestContext,
        next: (Request, CoordinatorRequestContext) async throws -> Response
    ) async throws -> Response {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else { throw APIError.unauthorized }
        let presented = Array(header.utf8.dropFirst("Bearer ".utf8.count))
        guard Self.matches(presented, anyOf: tokens) else { throw APIError.unauthorized }
        return try await next(request, context)
    }

    /// Compares against every token in time that depends only on the lengths, never on where the first
    /// differing byte is, so response timing does not leak a token prefix.
    static func matches(_ presented: [UInt8], anyOf tokens: [[UInt8]]) -> Bool {
        var found: UInt8 = 0
        for token in tokens {
            var difference: UInt8 = presented.count == token.count ? 0 : 1
            for index in 0..<token.count {
                let byte = index < presented.count ? presented[index] : 0
                difference |= byte ^ token[index]
            }
            found |= difference == 0 ? 1 : 0
        }
        return found == 1
    }
}
