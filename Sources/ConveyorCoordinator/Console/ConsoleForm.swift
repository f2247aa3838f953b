import Foundation
import Hummingbird

/// An `application/x-www-form-urlencoded` body (what the console's forms post), and the query strings
/// the console builds. Small bodies only: a form carries a CSRF token and a few fields.
struct ConsoleForm: Sendable {
    private(set) var pairs: [(name: String, value: String)] = []

    static let maximumBytes = 64 * 1024

    init(pairs: [(name: String, value: String)]) {
        self.pairs = pairs
    }

    init(encoded text: some StringProtocol) {
        for part in text.split(separator: "&") where !part.isEmpty {
            let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            pairs.append((Self.decode(pieces[0]), pieces.count > 1 ? Self.decode(pieces[1]) : ""))
        }
    }

    static func read(_ request: Request) async throws -> ConsoleForm {
        let body = try await RequestReading.body(request, maxBytes: maximumBytes)
        return ConsoleForm(encoded: String(decoding: body, as: UTF8.self))
    }

    subscript(_ name: String) -> String? {
        pairs.first { $0.name == name }?.value
    }

    /// The pairs as a query string (each value percent-encoded).
    var encoded: String {
        pairs.map { "\(Self.encode($0.name))=\(Self.encode($0.value))" }.joined(separator: "&")
    }

    static func encode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    static func decode(_ text: some StringProtocol) -> String {
        let spaced = text.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }
}
