import ConveyorCore
import Testing

@Suite("Webhooks: signatures and allowed hosts (no I/O)")
struct WebhookSignatureTests {
    private let secret = "0123456789abcdef-secret"

    @Test("a signature verifies for its body and secret, within the tolerance, and for nothing else")
    func verifies() {
        let body = #"{"event":"task.finished"}"#
        let header = WebhookSignature.header(body: body, secret: secret, unixSeconds: 1_800_000_000)
        #expect(header.hasPrefix("t=1800000000,v1=") && header.count == "t=1800000000,v1=".count + 64)
        #expect(WebhookSignature.verify(header: header, body: body, secret: secret, nowSeconds: 1_800_000_100))
        #expect(!WebhookSignature.verify(header: header, body: body + " ", secret: secret, nowSeconds: 1_800_000_100))
        #expect(!WebhookSignature.verify(header: header, body: body, secret: secret + "x", nowSeconds: 1_800_000_100))
        #expect(!WebhookSignature.verify(header: header, body: body, secret: secret, nowSeconds: 1_800_000_301), "too old: a replay")
        #expect(!WebhookSignature.verify(header: "v1=abc", body: body, secret: secret, nowSeconds: 1_800_000_000))
    }

    @Test("the signature is HMAC-SHA256 of \"<t>.<body>\" in hex (a known vector)")
    func knownVector() {
        // python3 -c 'import hmac,hashlib; print(hmac.new(b"key", b"1.body", hashlib.sha256).hexdigest())'
        #expect(WebhookSignature.header(body: "body", secret: "key", unixSeconds: 1)
            == "t=1,v1=91b5374b153842ad05b2c4eab9349b8321b14703165bd3fb8b034dfb8be98ae5")
    }

    @Test("only allowed hosts, http(s) and no user info pass; nothing passes while webhooks are off")
    func hostPolicy() {
        let policy = WebhookHostPolicy(allowedHosts: ["hooks.example.com", "*.internal.example.org", "127.0.0.1"])
        #expect(policy.refusal(for: "https://hooks.example.com/x") == nil)
        #expect(policy.refusal(for: "http://HOOKS.example.com:8443/x?y=1") == nil)
        #expect(policy.refusal(for: "https://a.internal.example.org/x") == nil)
        #expect(policy.refusal(for: "http://127.0.0.1:9000/") == nil)
        #expect(policy.refusal(for: "https://internal.example.org/x") != nil, "the wildcard covers subdomains only")
        #expect(policy.refusal(for: "https://evil.com/x")?.contains("not in the allowed") == true)
        #expect(policy.refusal(for: "https://hooks.example.com.evil.com/x") != nil)
        #expect(policy.refusal(for: "ftp://hooks.example.com/x")?.contains("http or https") == true)
        #expect(policy.refusal(for: "https://user:pw@hooks.example.com/x")?.contains("user info") == true)
        #expect(policy.refusal(for: "http://169.254.169.254/latest/meta-data") != nil)
        #expect(WebhookHostPolicy(allowedHosts: []).refusal(for: "https://hooks.example.com/")?.contains("webhooks are off") == true)
        #expect(WebhookHostPolicy(allowedHosts: ["*"]).refusal(for: "https://anything.example/") == nil)
    }
}

@Suite("Retry-After (no I/O)")
struct RetryAfterTests {
    @Test("seconds and HTTP dates become a wait; a date in the past is no wait; garbage is nil")
    func parses() {
        let now: Int64 = 1_800_000_000_000  // Fri, 15 Jan 2027 08:00:00 GMT
        #expect(RetryAfter.parse("120", nowMillis: now) == .seconds(120))
        #expect(RetryAfter.parse(" 0 ", nowMillis: now) == .zero)
        #expect(RetryAfter.parse("Fri, 15 Jan 2027 08:00:30 GMT", nowMillis: now) == .seconds(30))
        #expect(RetryAfter.parse("Fri, 15 Jan 2027 07:00:00 GMT", nowMillis: now) == .zero)
        #expect(RetryAfter.parse("soon", nowMillis: now) == nil)
        #expect(RetryAfter.parse("-5", nowMillis: now) == nil)
    }
}
