import ConveyorCoordinator
import ConveyorCore
import ConveyorTesting
import Foundation
import OpenAPIKit
import Testing

@Suite("OpenAPI contract")
struct OpenAPITests {
    static let document = try! JSONValue.parse(OpenAPIRoutes.json)
    static let checker = SchemaChecker(document: document)

    /// `docs/openapi.json` in the repository.
    static var committedPath: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/openapi.json").path
    }

    @Test("the document is valid OpenAPI 3.1 (OpenAPIKit decodes and validates it)")
    func valid() throws {
        let decoded = try JSONDecoder().decode(OpenAPI.Document.self, from: Data(OpenAPIRoutes.json.utf8))
        try decoded.validate()
        #expect(decoded.openAPIVersion == .v3_1_0)
        #expect(decoded.paths.count >= 27)
    }

    @Test("every $ref resolves, every path parameter is declared, every operation has an id")
    func references() {
        var refs: [String] = []
        func walk(_ value: JSONValue) {
            switch value {
            case .object(let members):
                if let ref = members["$ref"]?.stringValue { refs.append(ref) }
                members.values.forEach(walk)
            case .array(let elements): elements.forEach(walk)
            default: break
            }
        }
        walk(Self.document)
        #expect(!refs.isEmpty)
        for ref in Set(refs) { #expect(Self.checker.resolve(ref) != nil, "\(ref)") }
        guard case .object(let paths)? = Self.document["paths"] else { Issue.record("no paths"); return }
        for (path, item) in paths {
            guard case .object(let operations) = item else { continue }
            for (method, operation) in operations where ["get", "post"].contains(method) {
                #expect(operation["operationId"]?.stringValue != nil, "\(method) \(path)")
            }
        }
    }

    @Test("GET /openapi.json serves the document, and docs/openapi.json in the repository is the same")
    func served() async throws {
        let stack = try await Stack.start(agents: 0)
        let reply = try await stack.request(.GET, "/openapi.json", token: nil)
        #expect(reply.status == 200)
        #expect(reply.json == Self.document)
        let committed = try String(contentsOfFile: Self.committedPath, encoding: .utf8)
        #expect(try JSONValue.parse(committed) == Self.document, "regenerate it: conveyor openapi > docs/openapi.json")
        try await stack.stop()
    }

    @Test("the router and the document list exactly the same routes (the console's /ui pages are not API)")
    func sameRoutes() async throws {
        let stack = try await Stack.start(agents: 0)
        let routed = Set(try stack.coordinator.makeRouter().routes
            .map { "\($0.method.rawValue) \($0.path.description)" }
            .filter { !$0.contains(" /ui") })
        var documented: Set<String> = []
        if case .object(let paths)? = Self.document["paths"] {
            for (path, item) in paths {
                guard case .object(let operations) = item else { continue }
                for method in operations.keys where ["get", "post", "put", "delete", "patch"].contains(method) {
                    documented.insert("\(method.uppercased()) \(path)")
                }
            }
        }
        #expect(routed.subtracting(documented).isEmpty, "routed but not documented: \(routed.subtracting(documented).sorted())")
        #expect(documented.subtracting(routed).isEmpty, "documented but not routed: \(documented.subtracting(routed).sorted())")
        try await stack.stop()
    }

    /// The schema the document gives for `status` of `method path`, its shared responses resolved.
    static func schema(_ method: String, _ path: String, status: Int) -> JSONValue? {
        guard var response = document["paths"]?[path]?[method.lowercased()]?["responses"]?[String(status)] else { return nil }
        if let ref = response["$ref"]?.stringValue, let target = checker.resolve(ref) { response = target }
        return response["content"]?["application/json"]?["schema"]
    }

    private func check(_ reply: Stack.Reply, _ method: String, _ path: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let schema = Self.schema(method, path, status: reply.status) else {
            Issue.record("\(method) \(path) answered \(reply.status), which the document does not list: \(reply.body.prefix(200))", sourceLocation: sourceLocation)
            return
        }
        guard let json = reply.json else {
            Issue.record("\(method) \(path) \(reply.status) is not JSON", sourceLocation: sourceLocation)
            return
        }
        let problems = Self.checker.problems(json, against: schema)
        #expect(problems.isEmpty, "\(method) \(path) \(reply.status): \(problems)", sourceLocation: sourceLocation)
        #expect(reply.headers.first(name: "X-Correlation-ID") != nil, sourceLocation: sourceLocation)
    }

    @Test("real responses of every JSON operation match their schemas, errors included")
    func contract() async throws {
        let stack = try await Stack.start(agents: 1)
        let submitted = try await stack.post("/v1/tasks", #"{"type":"echo","params":{"x":1},"tags":{"k":"v"}}"#, headers: [("Idempotency-Key", "contract-1")])
        check(submitted, "POST", "/v1/tasks")
        let id = try #require(submitted.json?["id"]?.intValue)
        check(try await stack.post("/v1/tasks", #"{"type":"echo"}"#, headers: [("Idempotency-Key", "contract-1")]), "POST", "/v1/tasks")
        check(try await stack.post("/v1/tasks", #"{"type":"nope"}"#), "POST", "/v1/tasks")
        check(try await stack.post("/v1/tasks", #"{"type":"#), "POST", "/v1/tasks")
        check(try await stack.request(.POST, "/v1/tasks", body: #"{"type":"echo"}"#, token: nil), "POST", "/v1/tasks")
        check(try await stack.post("/v1/tasks/batch", #"{"tasks":[{"type":"noop"},{"type":"sleep","params":{"ms":60000},"delay":"1h"}]}"#), "POST", "/v1/tasks/batch")
        _ = try await stack.waitUntilTerminal([id])
        check(try await stack.get("/v1/tasks/\(id)"), "GET", "/v1/tasks/{id}")
        check(try await stack.get("/v1/tasks/\(id)?wait=1s"), "GET", "/v1/tasks/{id}")
        check(try await stack.get("/v1/tasks/999999999"), "GET", "/v1/tasks/{id}")
        check(try await stack.get("/v1/tasks/\(id)/events"), "GET", "/v1/tasks/{id}/events")
        check(try await stack.get("/v1/tasks?type=echo&tag=k:v"), "GET", "/v1/tasks")
        check(try await stack.get("/v1/tasks?status=bogus"), "GET", "/v1/tasks")
        check(try await stack.post("/v1/tasks/\(id)/cancel", ""), "POST", "/v1/tasks/{id}/cancel")
        let delayed = try await stack.submit("sleep", extra: #","delay":"1h""#)
        check(try await stack.post("/v1/tasks/\(delayed)/cancel", ""), "POST", "/v1/tasks/{id}/cancel")
        check(try await stack.post("/v1/tasks/cancel", #"{"type":"sleep"}"#), "POST", "/v1/tasks/cancel")
        check(try await stack.post("/v1/tasks/retry", #"{"type":"echo"}"#), "POST", "/v1/tasks/retry")
        check(try await stack.post("/v1/tasks/retry", #"{}"#), "POST", "/v1/tasks/retry")
        let running = try await stack.submit("steps", params: #"{"steps":3,"ms":300}"#)
        try await Task.sleep(for: .milliseconds(400))
        check(try await stack.post("/v1/tasks/\(running)/progress", #"{"fraction":0.5,"message":"half"}"#), "POST", "/v1/tasks/{id}/progress")
        let workflow = try await stack.post("/v1/workflows", #"{"name":"contract","chain":[{"type":"noop"},{"type":"noop"}]}"#)
        check(workflow, "POST", "/v1/workflows")
        let workflowID = try #require(workflow.json?["id"]?.intValue)
        check(try await stack.get("/v1/workflows/\(workflowID)"), "GET", "/v1/workflows/{id}")
        check(try await stack.get("/v1/workflows?limit=5"), "GET", "/v1/workflows")
        check(try await stack.post("/v1/workflows/\(workflowID)/retry", ""), "POST", "/v1/workflows/{id}/retry")
        let long = try await stack.post("/v1/workflows", #"{"name":"contract-long","chain":[{"type":"sleep","params":{"ms":60000}},{"type":"noop"}]}"#)
        let longID = try #require(long.json?["id"]?.intValue)
        check(try await stack.post("/v1/workflows/\(longID)/cancel", ""), "POST", "/v1/workflows/{id}/cancel")
        check(try await stack.get("/v1/dead"), "GET", "/v1/dead")
        check(try await stack.post("/v1/dead/retry", ""), "POST", "/v1/dead/retry")
        check(try await stack.post("/v1/dead/\(id)/retry", ""), "POST", "/v1/dead/{id}/retry")
        check(try await stack.get("/v1/queues"), "GET", "/v1/queues")
        check(try await stack.post("/v1/queues/default/pause", ""), "POST", "/v1/queues/{queue}/pause")
        check(try await stack.post("/v1/queues/default/resume", ""), "POST", "/v1/queues/{queue}/resume")
        check(try await stack.post("/v1/types/echo/pause", ""), "POST", "/v1/types/{type}/pause")
        check(try await stack.post("/v1/types/echo/resume", ""), "POST", "/v1/types/{type}/resume")
        check(try await stack.post("/v1/queues/nope/pause", ""), "POST", "/v1/queues/{queue}/pause")
        check(try await stack.get("/v1/schedules"), "GET", "/v1/schedules")
        check(try await stack.get("/health"), "GET", "/health")
        check(try await stack.get("/ready"), "GET", "/ready")
        check(try await stack.get("/status"), "GET", "/status")
        check(try await stack.request(.GET, "/status", token: nil), "GET", "/status")
        try await stack.stop()
    }
}
