import AsyncHTTPClient
import ConveyorCoordinator
import ConveyorCore
import ConveyorTesting
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// The console over plain HTTP: sign-in, the session cookie, CSRF, scopes and escaping, request by request.
@Suite("Console")
struct ConsoleTests {
    static let tokens = [
        APIToken(name: "ops", scopes: [.admin], secret: "admin-secret-00001"),
        APIToken(name: "dash", scopes: [.read], secret: "read-secret-000001"),
        APIToken(name: "ci", scopes: [.submit], secret: "submit-secret-0001"),
    ]

    private func start(agents: Int = 0) async throws -> Stack {
        try await Stack.start(agents: agents) { $0.apiTokens += Self.tokens }
    }

    /// A client that does not follow redirects, so a test sees the console's 303s. Process-wide, as
    /// `HTTPClient.shared` is.
    static let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: .init(redirectConfiguration: .disallow))

    private func send(_ stack: Stack, _ method: HTTPMethod, _ path: String, body: String? = nil, headers: [(String, String)]) async throws -> Stack.Reply {
        var request = HTTPClientRequest(url: stack.baseURL + path)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await Self.client.execute(request, timeout: .seconds(30))
        let buffer = try await response.body.collect(upTo: 16 << 20)
        return Stack.Reply(status: Int(response.status.code), body: String(buffer: buffer), headers: response.headers)
    }

    /// Signs in with `secret`; returns the session cookie (name=value).
    private func signIn(_ stack: Stack, _ secret: String, headers: [(String, String)] = []) async throws -> (cookie: String?, reply: Stack.Reply) {
        let reply = try await send(
            stack, .POST, "/ui/login", body: "token=\(secret)&next=%2Fui%2Ftasks",
            headers: [("Content-Type", "application/x-www-form-urlencoded")] + headers)
        let cookie = reply.headers["Set-Cookie"].first?.split(separator: ";").first.map(String.init)
        return (cookie, reply)
    }

    private func page(_ stack: Stack, _ path: String, cookie: String?) async throws -> Stack.Reply {
        try await send(stack, .GET, path, headers: cookie.map { [("Cookie", $0)] } ?? [])
    }

    private func form(_ stack: Stack, _ path: String, cookie: String, _ body: String) async throws -> Stack.Reply {
        try await send(stack, .POST, path, body: body, headers: [("Cookie", cookie), ("Content-Type", "application/x-www-form-urlencoded")])
    }

    /// The CSRF token in a page's forms.
    private func csrf(_ html: String) -> String? {
        guard let range = html.range(of: #"name="csrf" value=""#) else { return nil }
        return String(html[range.upperBound...].prefix { $0 != "\"" })
    }

    @Test("a page without a session redirects to sign-in; a good token signs in with an HttpOnly, SameSite=Strict cookie; a bad one does not")
    func signIn() async throws {
        let stack = try await start()
        let anonymous = try await page(stack, "/ui/tasks", cookie: nil)
        #expect(anonymous.status == 303 && anonymous.headers["Location"].first == "/ui/login?next=%2Fui%2Ftasks")
        let login = try await page(stack, "/ui/login", cookie: nil)
        #expect(login.status == 200 && login.body.contains("Sign in"))
        let (bad, badReply) = try await signIn(stack, "not-a-token-at-all")
        #expect(bad == nil && badReply.headers["Location"].first?.hasPrefix("/ui/login?failed=1") == true)
        let (submitOnly, _) = try await signIn(stack, "submit-secret-0001")
        #expect(submitOnly == nil, "a token that cannot read does not sign in")
        let (cookie, reply) = try await signIn(stack, "admin-secret-00001")
        #expect(reply.status == 303 && reply.headers["Location"].first == "/ui/tasks")
        let header = try #require(reply.headers["Set-Cookie"].first)
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=28800"] { #expect(header.contains(attribute), "\(header)") }
        #expect(!header.contains("Secure"))
        let signedIn = try await page(stack, "/ui/tasks", cookie: cookie)
        #expect(signedIn.status == 200 && signedIn.body.contains("ops"))
        #expect(signedIn.headers["Content-Security-Policy"].first?.contains("script-src 'self'") == true)
        let (_, proxied) = try await signIn(stack, "admin-secret-00001", headers: [("X-Forwarded-Proto", "https")])
        #expect(proxied.headers["Set-Cookie"].first?.contains("; Secure") == true)
        try await stack.stop()
    }

    @Test("every page renders for an admin, with HTML in params, errors and tags escaped")
    func pagesAndEscaping() async throws {
        let stack = try await start()
        let reply = try await stack.request(
            .POST, "/v1/tasks", body: #"{"type":"echo","params":{"x":"<script>alert(1)</script>"},"tags":{"t":"<img src=x>"}}"#, token: "admin-secret-00001")
        let id = try #require(reply.json?["id"]?.intValue)
        let (cookie, _) = try await signIn(stack, "admin-secret-00001")
        for path in ["/ui", "/ui/tasks", "/ui/tasks?status=queued&type=echo", "/ui/tasks/\(id)", "/ui/dead", "/ui/workflows", "/ui/schedules"] {
            let page = try await page(stack, path, cookie: cookie)
            #expect(page.status == 200, "\(path): \(page.status)")
            #expect(!page.body.contains("<script>alert(1)</script>") && !page.body.contains("<img src=x>"), "\(path)")
        }
        let task = try await page(stack, "/ui/tasks/\(id)", cookie: cookie)
        #expect(task.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(try await page(stack, "/ui/tasks?status=nonsense", cookie: cookie).status == 400)
        #expect(try await page(stack, "/ui/tasks/999999999", cookie: cookie).status == 404)
        let found = try await page(stack, "/ui/find?q=\(id)", cookie: cookie)
        #expect(found.headers["Location"].first == "/ui/tasks/\(id)")
        try await stack.stop()
    }

    @Test("an action needs the session's CSRF token and the admin scope; with both it takes effect in PostgreSQL")
    func actions() async throws {
        let stack = try await start()
        let id = try #require(try await stack.request(.POST, "/v1/tasks", body: #"{"type":"noop"}"#, token: "admin-secret-00001").json?["id"]?.intValue)
        let (admin, _) = try await signIn(stack, "admin-secret-00001")
        let adminCookie = try #require(admin)
        let page = try await page(stack, "/ui/tasks/\(id)", cookie: adminCookie)
        let token = try #require(csrf(page.body))
        #expect(try await form(stack, "/ui/tasks/\(id)/cancel", cookie: adminCookie, "csrf=wrong").status == 403)
        #expect(try await form(stack, "/ui/tasks/\(id)/cancel", cookie: adminCookie, "").status == 403)
        #expect(try await stack.task(id)["status"]?.stringValue == "queued")

        let (reader, _) = try await signIn(stack, "read-secret-000001")
        let readerCookie = try #require(reader)
        let readerPage = try await self.page(stack, "/ui/tasks/\(id)", cookie: readerCookie)
        #expect(!readerPage.body.contains("id=\"cancel\""))
        let readerToken = try #require(csrf(readerPage.body))
        #expect(try await form(stack, "/ui/tasks/\(id)/cancel", cookie: readerCookie, "csrf=\(readerToken)").status == 403)
        #expect(try await stack.task(id)["status"]?.stringValue == "queued")

        let done = try await form(stack, "/ui/tasks/\(id)/cancel", cookie: adminCookie, "csrf=\(token)")
        #expect(done.status == 303 && done.headers["Location"].first?.hasPrefix("/ui/tasks/\(id)?notice=") == true)
        #expect(try await stack.task(id)["status"]?.stringValue == "cancelled")

        let paused = try await form(stack, "/ui/queues/default/pause", cookie: adminCookie, "csrf=\(token)")
        #expect(paused.status == 303)
        #expect(try await stack.get("/v1/queues").body.contains("\"paused\":true"))
        _ = try await form(stack, "/ui/queues/default/resume", cookie: adminCookie, "csrf=\(token)")
        #expect(try await stack.get("/v1/queues").body.contains("\"paused\":false"))
        try await stack.stop()
    }

    @Test("signing out ends the session even for a copy of its cookie")
    func signOut() async throws {
        let stack = try await start()
        let (cookie, _) = try await signIn(stack, "admin-secret-00001")
        let session = try #require(cookie)
        let token = try #require(csrf(try await page(stack, "/ui", cookie: session).body))
        let out = try await form(stack, "/ui/logout", cookie: session, "csrf=\(token)")
        #expect(out.status == 303 && out.headers["Set-Cookie"].first?.contains("Max-Age=0") == true)
        #expect(try await page(stack, "/ui", cookie: session).status == 303)
        try await stack.stop()
    }
}
