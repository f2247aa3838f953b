@testable import ConveyorCoordinator
import ConveyorCore
import Testing

@Suite("Console sessions")
struct ConsoleSessionsTests {
    let ops = APIToken(name: "ops", scopes: [.admin], secret: "admin-secret-00001")
    let dash = APIToken(name: "dash", scopes: [.read], secret: "read-secret-000001")

    private func sessions(_ tokens: [APIToken]? = nil) -> ConsoleSessions {
        ConsoleSessions(tokens: tokens ?? [ops, dash], authDisabled: false, lifetime: .seconds(3600))
    }

    @Test("a session cookie proves its token until it expires, and carries a CSRF token of its own")
    func roundTrip() throws {
        let store = sessions()
        let (cookie, opened) = store.open(for: ops, nowMillis: 1_000)
        let verified = try #require(store.verify(cookie, nowMillis: 2_000))
        #expect(verified.token?.name == "ops" && verified.csrf == opened.csrf && !verified.csrf.isEmpty)
        #expect(store.verify(cookie, nowMillis: 1_000 + 3_600_000) == nil)
        let (other, otherSession) = store.open(for: ops, nowMillis: 1_000)
        #expect(other != cookie && otherSession.csrf != opened.csrf)
    }

    @Test("a forged, altered or foreign cookie is refused")
    func forgeries() {
        let store = sessions()
        let (cookie, _) = store.open(for: dash, nowMillis: 1_000)
        let parts = cookie.split(separator: ".")
        // Claim the admin token's name with the read token's signature.
        let forgedPayload = ConsoleSessions.base64URL(Data("ops|999999999999|abc".utf8))
        #expect(store.verify(forgedPayload + "." + parts[1], nowMillis: 2_000) == nil)
        // One character of the payload changed (the MAC's last character carries padding bits only).
        #expect(store.verify((cookie.first == "A" ? "B" : "A") + cookie.dropFirst(), nowMillis: 2_000) == nil)
        #expect(store.verify("garbage", nowMillis: 2_000) == nil)
        // The same name with another secret (another deployment) does not verify.
        let elsewhere = sessions([APIToken(name: "dash", scopes: [.read], secret: "another-secret-0001")])
        #expect(elsewhere.verify(cookie, nowMillis: 2_000) == nil)
        // A token removed from the configuration ends its sessions.
        #expect(sessions([ops]).verify(cookie, nowMillis: 2_000) == nil)
    }

    @Test("signing out ends the session on this coordinator")
    func signOut() throws {
        let store = sessions()
        let (cookie, _) = store.open(for: ops, nowMillis: 1_000)
        let session = try #require(store.verify(cookie, nowMillis: 2_000))
        store.close(session)
        #expect(store.verify(cookie, nowMillis: 3_000) == nil)
    }

    @Test("CSRF tokens are compared exactly")
    func csrf() {
        let store = sessions()
        let (_, session) = store.open(for: ops, nowMillis: 1_000)
        #expect(ConsoleSessions.csrfMatches(session.csrf, session))
        #expect(!ConsoleSessions.csrfMatches(nil, session))
        #expect(!ConsoleSessions.csrfMatches(session.csrf + "x", session))
        #expect(!ConsoleSessions.csrfMatches(String(session.csrf.dropLast()) + "x", session))
    }

    @Test("with authentication disabled only anonymous sessions exist")
    func anonymous() throws {
        let store = ConsoleSessions(tokens: [ops], authDisabled: true, lifetime: .seconds(60))
        let (cookie, _) = store.open(for: nil, nowMillis: 0)
        #expect(try #require(store.verify(cookie, nowMillis: 1)).token == nil)
        let (named, _) = sessions().open(for: ops, nowMillis: 0)
        #expect(store.verify(named, nowMillis: 1) == nil)
    }

    @Test("a next page after sign-in is a console path, never another site")
    func safeNext() {
        #expect(ConsoleRoutes.safeNext("/ui/tasks?status=dead") == "/ui/tasks?status=dead")
        #expect(ConsoleRoutes.safeNext("//evil.example/ui") == "/ui")
        #expect(ConsoleRoutes.safeNext("https://evil.example") == "/ui")
        #expect(ConsoleRoutes.safeNext("/ui\\@evil") == "/ui")
        #expect(ConsoleRoutes.safeNext(nil) == "/ui")
    }
}

import Foundation
