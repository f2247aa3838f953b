import ConveyorCore
import Crypto
import Foundation
import Synchronization

/// The console's sign-in: a session cookie that names an API token and is signed with a key derived
/// from that token's secret. Any coordinator with the same tokens verifies it, so sessions survive a
/// restart and work behind a load balancer; removing a token from the configuration ends its sessions.
/// The CSRF token of a session is derived from it too: no server-side state, except the sessions signed
/// out on this coordinator, remembered until they would have expired.
///
/// Cookie value: `base64url(name|expires-ms|nonce) "." base64url(HMAC-SHA256(key, payload))`, where
/// key = HMAC-SHA256(token secret, "conveyor console session v1").
public final class ConsoleSessions: Sendable {
    /// One verified session.
    public struct Session: Sendable, Hashable {
        /// The token it signed in with; nil when authentication is disabled.
        public var token: APIToken?
        public var expiresAtMillis: Int64
        public var nonce: String
        /// What every state-changing form of this session must carry.
        public var csrf: String
    }

    public static let cookieName = "conveyor_session"
    private static let context = Data("conveyor console session v1".utf8)

    let tokens: [APIToken]
    let authDisabled: Bool
    let lifetime: Duration
    /// Signs the anonymous sessions when authentication is disabled (per process: they do not outlive it).
    private let anonymousKey = SymmetricKey(size: .bits256)
    /// Nonces signed out here, with when they would have expired.
    private let revoked = Mutex<[String: Int64]>([:])

    public init(tokens: [APIToken], authDisabled: Bool, lifetime: Duration) {
        self.tokens = tokens
        self.authDisabled = authDisabled
        self.lifetime = lifetime
    }

    /// A new session for `token` (nil: an anonymous one, when authentication is disabled), as a cookie value.
    public func open(for token: APIToken?, nowMillis: Int64) -> (cookie: String, session: Session) {
        var generator = SystemRandomNumberGenerator()
        let nonce = CorrelationID.make(using: &generator)
        let expires = nowMillis + lifetime.milliseconds
        let payload = Data("\(token?.name ?? "")|\(expires)|\(nonce)".utf8)
        let key = self.key(for: token)
        let mac = Data(HMAC<SHA256>.authenticationCode(for: payload, using: key))
        let cookie = Self.base64URL(payload) + "." + Self.base64URL(mac)
        return (cookie, Session(token: token, expiresAtMillis: expires, nonce: nonce, csrf: Self.csrf(nonce: nonce, key: key)))
    }

    /// The session a cookie value proves, or nil (forged, expired, signed out, or its token is gone).
    public func verify(_ cookie: String, nowMillis: Int64) -> Session? {
        let parts = cookie.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let payload = Self.data(base64URL: parts[0]), let mac = Self.data(base64URL: parts[1]),
            let text = String(data: payload, encoding: .utf8)
        else { return nil }
        let fields = text.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 3, let expires = Int64(fields[1]), expires > nowMillis, !fields[2].isEmpty else { return nil }
        let token: APIToken?
        if fields[0].isEmpty {
            guard authDisabled else { return nil }
            token = nil
        } else {
            guard !authDisabled, let named = tokens.first(where: { $0.name == fields[0] }) else { return nil }
            token = named
        }
        let key = self.key(for: token)
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: payload, using: key) else { return nil }
        let nonce = fields[2]
        let signedOut = revoked.withLock { revoked in
            revoked = revoked.filter { $0.value > nowMillis }
            return revoked[nonce] != nil
        }
        guard !signedOut else { return nil }
        return Session(token: token, expiresAtMillis: expires, nonce: nonce, csrf: Self.csrf(nonce: nonce, key: key))
    }

    /// Signs a session out on this coordinator (the browser drops its cookie too).
    public func close(_ session: Session) {
        revoked.withLock { $0[session.nonce] = session.expiresAtMillis }
    }

    /// Whether a form's CSRF token is the session's, compared in constant time.
    public static func csrfMatches(_ presented: String?, _ session: Session) -> Bool {
        guard let presented else { return false }
        let a = Array(presented.utf8), b = Array(session.csrf.utf8)
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    private func key(for token: APIToken?) -> SymmetricKey {
        guard let token else { return anonymousKey }
        let derived = HMAC<SHA256>.authenticationCode(for: Self.context, using: SymmetricKey(data: token.secret))
        return SymmetricKey(data: Data(derived))
    }

    private static func csrf(nonce: String, key: SymmetricKey) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data("csrf|\(nonce)".utf8), using: key)
        return base64URL(Data(mac))
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func data(base64URL text: Substring) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }
}
