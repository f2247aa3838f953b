import Foundation
import Hummingbird

/// What the routes read from a request the same way: its body within the size limit, and a page size.
enum RequestReading {
    /// Reads the body, refusing more than `maxBytes` (before reading, when Content-Length says so).
    static func body(_ request: Request, maxBytes: Int) async throws -> Data {
        if let length = request.headers.value(of: .contentLength).flatMap({ Int($0) }), length > maxBytes {
            throw APIError.payloadTooLarge(limit: maxBytes)
        }
        do {
            let buffer = try await request.body.collect(upTo: maxBytes)
            return Data(buffer.readableBytesView)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw APIError.payloadTooLarge(limit: maxBytes)
        }
    }

    /// The `limit` query parameter: `defaultLimit` when absent, a 400 outside 1…`maxLimit`.
    static func limit(_ request: Request, defaultLimit: Int, maxLimit: Int) throws -> Int {
        guard let text = request.uri.queryParameters["limit"] else { return defaultLimit }
        guard let value = Int(String(text)), (1...maxLimit).contains(value) else {
            throw APIError.badRequest("limit: must be 1–\(maxLimit)", code: "invalid_field")
        }
        return value
    }
}
