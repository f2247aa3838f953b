import ConveyorCore

/// What a token may do. `admin` implies `read` and `submit`; `read` does not imply `submit`.
public enum APIScope: String, Sendable, Hashable, CaseIterable, Comparable {
    /// Create tasks, and read the tasks this token created.
    case submit
    /// Read every task, dead letter and status.
    case read
    /// Cancel, redrive, and the operator actions later issues add.
    case admin

    public static func < (lhs: APIScope, rhs: APIScope) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// A named bearer token with its scopes. The name goes into logs and onto the tasks it submits; the
/// secret never leaves this type except into the constant-time comparison.
public struct APIToken: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var scopes: Set<APIScope>
    let secret: [UInt8]

    public init(name: String, scopes: Set<APIScope>, secret: String) {
        self.name = name
        self.scopes = scopes
        self.secret = Array(secret.utf8)
    }

    /// Whether the token may do what `scope` allows (admin allows everything).
    public func allows(_ scope: APIScope) -> Bool {
        scopes.contains(scope) || scopes.contains(.admin)
    }

    /// The name and scopes, never the secret.
    public var description: String { "\(name) (\(scopes.sorted().map(\.rawValue).joined(separator: "+")))" }

    /// Shortest secret accepted: sixteen characters are enough to make guessing hopeless at any request
    /// rate a coordinator can serve.
    public static let minimumSecretLength = 16

    /// Parses the token list: entries `name:scope[+scope…]:secret`, separated by commas or newlines
    /// (`#` starts a comment line in a tokens file). A bare `secret` is the old form: an admin token
    /// named `token-<n>`, accepted so that existing deployments keep working, and reported in `legacy`.
    ///
    /// - Parameter key: names the setting in error messages (which never quote a secret).
    public static func parse(_ text: String, key: String) throws(ConfigurationError) -> (tokens: [APIToken], legacy: [String]) {
        var tokens: [APIToken] = []
        var legacy: [String] = []
        let entries = text.split(whereSeparator: { $0 == "," || $0 == "\n" })
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        for (index, entry) in entries.enumerated() {
            let parts = entry.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            let token: APIToken
            switch parts.count {
            case 1:
                token = APIToken(name: "token-\(index + 1)", scopes: [.admin], secret: parts[0])
                legacy.append(token.name)
            case 3:
                let (name, scopeText, secret) = (parts[0], parts[1], parts[2])
                guard TaskTypeRegistry.isValidName(name) else {
                    throw ConfigurationError(key: key, "entry \(index + 1): token name '\(name)' must be letters, digits, '-', '_' or '.'")
                }
                var scopes: Set<APIScope> = []
                for word in scopeText.split(separator: "+") {
                    guard let scope = APIScope(rawValue: String(word)) else {
                        throw ConfigurationError(key: key, "token '\(name)': unknown scope '\(word)' (submit, read or admin)")
                    }
                    scopes.insert(scope)
                }
                guard !scopes.isEmpty else { throw ConfigurationError(key: key, "token '\(name)' has no scope (submit, read or admin)") }
                token = APIToken(name: name, scopes: scopes, secret: secret)
            default:
                throw ConfigurationError(key: key, "entry \(index + 1) is not name:scope:secret (a scope is submit, read or admin; join several with +)")
            }
            guard token.secret.count >= minimumSecretLength || parts.count == 1 else {
                throw ConfigurationError(key: key, "token '\(token.name)': the secret must be at least \(minimumSecretLength) characters")
            }
            guard !token.secret.isEmpty else { throw ConfigurationError(key: key, "entry \(index + 1) has an empty secret") }
            guard !tokens.contains(where: { $0.name == token.name }) else {
                throw ConfigurationError(key: key, "token name '\(token.name)' appears twice")
            }
            guard !tokens.contains(where: { $0.secret == token.secret }) else {
                throw ConfigurationError(key: key, "token '\(token.name)' has the same secret as another token")
            }
            tokens.append(token)
        }
        return (tokens, legacy)
    }
}
