import ConveyorCore
import Hummingbird

/// Honours `X-Correlation-ID` (or makes one), stores it in the context and echoes it on every response,
/// errors included. The outermost middleware, so nothing escapes without the header.
struct CorrelationMiddleware: RouterMiddleware {
    func handle(
        _ request: Request, context: CoordinatorRequestContext,
        next: (Request, CoordinatorRequestContext) async throws -> Response
    ) async throws -> Response {
        var context = context
        let correlationID = CorrelationID.sanitize(request.headers.value(of: .correlationID)) ?? CorrelationID.timeOrdered()
        context.correlationID = correlationID
        var response = try await next(request, context)
        response.headers[.correlationID] = correlationID
        return response
    }
}

/// Turns every error into the API's JSON error shape, including Hummingbird's own (unknown route, wrong
/// method, body too large), so a client never has to parse anything else.
struct ErrorMiddleware: RouterMiddleware {
    let maxBodyBytes: Int

    func handle(
        _ request: Request, context: CoordinatorRequestContext,
        next: (Request, CoordinatorRequestContext) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return try error.response(from: request, context: context)
        } catch let error as any HTTPResponseError {
            let apiError: APIError
            switch error.status {
            case .notFound: apiError = .notFound("no route for \(request.method) \(request.uri.path)")
            case .contentTooLarge: apiError = .payloadTooLarge(limit: maxBodyBytes)
            case .methodNotAllowed: apiError = APIError(.methodNotAllowed, code: "method_not_allowed", "\(request.method) is not allowed on \(request.uri.path)")
            default: apiError = APIError(error.status, code: "http_\(error.status.code)", error.status.reasonPhrase)
            }
            return try apiError.response(from: request, context: context)
        } catch {
            context.logger.error("unhandled error", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            return try APIError(.internalServerError, code: "internal", "internal error").response(from: request, context: context)
        }
    }
}
