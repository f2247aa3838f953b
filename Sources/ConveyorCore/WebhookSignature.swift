import Crypto
import Foundation

/// The `Conveyor-Signature` header of a webhook delivery: `t=<unix seconds>,v1=<hex HMAC-SHA256>` over
/// `"<t>.<body>"` with the configured secret, as Stripe signs its events. The time is inside the signed
/// text, so a receiver that rejects old timestamps (say older than 5 minutes) also rejects replays.
public enum WebhookSignature {
    public static let headerName = "Conveyor-Signature"

    public static func header(body: String, secret: String, unixSeconds: Int64) -> String {
        "t=\(unixSeconds),v1=\(hex(body: body, secret: secret, unixSeconds: unixSeconds))"
    }

    static func hex(body: String, secret: String, unixSeconds: Int64) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Data("\(unixSeconds).\(body)".utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return code.map { String(format: "%02x", $0) }.joined()
    }

    /// Whether `header` is a valid signature of `body` made at most `tolerance` seconds from `nowSeconds`:
    /// what a receiver checks (the test receivers and the docs' examples do the same).
    public static func verify(header: String, body: String, secret: String, nowSeconds: Int64, tolerance: Int64 = 300) -> Bool {
        var timestamp: Int64?
        var signatures: [String] = []
        for part in header.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { continue }
            if pair[0] == "t" { timestamp = Int64(pair[1]) }
            if pair[0] == "v1" { signatures.append(pair[1]) }
        }
        guard let timestamp, abs(nowSeconds - timestamp) <= tolerance else { return false }
        let expected = Array(hex(body: body, secret: secret, unixSeconds: timestamp).utf8)
        // Constant time over the candidates: a timing difference must not reveal how much of a guess matched.
        return signatures.contains { candidate in
            let bytes = Array(candidate.utf8)
            guard bytes.count == expected.count else { return false }
            return zip(bytes, expected).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
        }
    }
}
