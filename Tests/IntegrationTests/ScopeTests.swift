import ConveyorCoordinator
import ConveyorCore
import ConveyorTesting
import Testing

@Suite("Token scopes")
struct ScopeTests {
    private static let tokens = [
        APIToken(name: "ci", scopes: [.submit], secret: "submit-secret-0001"),
        APIToken(name: "other", scopes: [.submit], secret: "submit-secret-0002"),
        APIToken(name: "dash", scopes: [.read], secret: "read-secret-000001"),
        APIToken(name: "ops", scopes: [.admin], secret: "admin-secret-00001"),
    ]

    private func start() async throws -> Stack {
        try await Stack.start(agents: 0) { configuration in configuration.apiTokens = Self.tokens }
    }

    @Test("submit creates and reads its own tasks only; read reads all but cannot submit; admin cancels; a missing scope is 403 naming it")
    func scopesGateTheRoutes() async throws {
        let stack = try await start()
        let created = try await stack.request(.POST, "/v1/tasks", body: #"{"type":"noop"}"#, token: "submit-secret-0001")
        #expect(created.status == 201)
        let id = try #require(created.json?["id"]?.intValue)

        #expect(try await stack.request(.GET, "/v1/tasks/\(id)", token: "submit-secret-0001").status == 200)
        #expect(try await stack.request(.GET, "/v1/tasks/\(id)", token: "submit-secret-0002").status == 404)
        #expect(try await stack.request(.GET, "/v1/tasks/\(id)", token: "read-secret-000001").status == 200)

        let readSubmits = try await stack.request(.POST, "/v1/tasks", body: #"{"type":"noop"}"#, token: "read-secret-000001")
        #expect(readSubmits.status == 403)
        #expect(readSubmits.json?["error"]?["code"]?.stringValue == "forbidden")
        #expect(readSubmits.json?["error"]?["message"]?.stringValue?.contains("submit scope") == true)

        #expect(try await stack.request(.POST, "/v1/tasks/\(id)/cancel", token: "submit-secret-0001").status == 403)
        #expect(try await stack.request(.POST, "/v1/tasks/\(id)/cancel", token: "read-secret-000001").status == 403)
        #expect(try await stack.request(.GET, "/v1/dead", token: "submit-secret-0001").status == 403)
        #expect(try await stack.request(.GET, "/v1/dead", token: "read-secret-000001").status == 200)
        #expect(try await stack.request(.POST, "/v1/tasks/\(id)/cancel", token: "admin-secret-00001").status == 200)
        #expect(try await stack.request(.GET, "/v1/tasks/1", token: "wrong-secret-00000").status == 401)
        try await stack.stop()
    }

    @Test("/status and /ready without a read token show no hosts, pids or error texts; with one they show all")
    func healthIsRedactedWithoutRead() async throws {
        let stack = try await start()
        let anonymous = try await stack.request(.GET, "/status", token: nil)
        #expect(anonymous.status == 200)
        #expect(anonymous.json?["agents"] == nil)
        #expect(anonymous.json?["live_agents"] != nil)
        let submitter = try await stack.request(.GET, "/status", token: "submit-secret-0001")
        #expect(submitter.json?["agents"] == nil)
        let reader = try await stack.request(.GET, "/status", token: "read-secret-000001")
        #expect(reader.json?["agents"] != nil)
        #expect(try await stack.request(.GET, "/ready", token: nil).status == 200)
        try await stack.stop()
    }

    @Test("token lists parse name:scope:secret, refuse unknown scopes, short secrets and duplicates, and accept a bare secret as admin")
    func parsing() throws {
        let (tokens, legacy) = try APIToken.parse("ci:submit:0123456789abcdef, ops:read+admin:fedcba9876543210\n# comment\nold-secret", key: "K")
        #expect(tokens.map(\.name) == ["ci", "ops", "token-3"])
        #expect(tokens[0].scopes == [.submit])
        #expect(tokens[1].allows(.submit))
        #expect(legacy == ["token-3"])
        #expect(throws: ConfigurationError.self) { try APIToken.parse("ci:write:0123456789abcdef", key: "K") }
        #expect(throws: ConfigurationError.self) { try APIToken.parse("ci:submit:short", key: "K") }
        #expect(throws: ConfigurationError.self) { try APIToken.parse("ci:submit:0123456789abcdef,ci:read:fedcba9876543210", key: "K") }
        #expect(throws: ConfigurationError.self) { try APIToken.parse("a:b", key: "K") }
    }
}
