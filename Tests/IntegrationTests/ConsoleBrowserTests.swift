import ConveyorCoordinator
import ConveyorCore
import ConveyorTesting
import Foundation
import Testing

/// The console in Debian's headless Chromium, driven over the DevTools protocol as a person would use it.
/// With `CONVEYOR_CONSOLE_SCREENSHOTS=<folder>` it also saves a screenshot of every page there (the
/// ones in docs/console were made so).
@Suite("Console in a real browser", .serialized)
struct ConsoleBrowserTests {
    static let tokens = [
        APIToken(name: "ops", scopes: [.admin], secret: "admin-secret-00001"),
        APIToken(name: "dash", scopes: [.read], secret: "read-secret-000001"),
    ]

    private func status(_ stack: Stack, _ id: Int64) async throws -> String? {
        try await stack.coordinator.postgres.withSession { session in
            try session.query("SELECT status FROM tasks WHERE id = $1", [String(id)]).rows.first?[0] ?? nil
        }
    }

    private func signIn(_ page: Chromium.Page, _ stack: Stack, secret: String) async throws {
        try await page.go(stack.baseURL + "/ui")
        #expect(try await page.url.contains("/ui/login"))
        try await page.evaluate("document.getElementById('token').value = \(JSONValue.string(secret).serialized)")
        try await page.click("#sign-in")
    }

    @Test("sign in, find a submitted task, open it, cancel and retry from the console, see user data as text, sign out; a read-only token gets no buttons and 403")
    func consoleEndToEnd() async throws {
        let stack = try await Stack.start(agents: 1) { $0.apiTokens += Self.tokens }
        let chromium = try await Chromium.start()
        let shots = ProcessInfo.processInfo.environment["CONVEYOR_CONSOLE_SCREENSHOTS"]
        let admin = "admin-secret-00001"
        func post(_ body: String) async throws -> Int64 {
            let reply = try await stack.request(.POST, "/v1/tasks", body: body, token: admin)
            guard reply.status == 201, let id = reply.json?["id"]?.intValue else { throw StackError("submit: \(reply.body)") }
            return id
        }
        let echo = try await post(#"{"type":"echo","params":{"customer":"acme","n":1},"tags":{"customer":"acme"}}"#)
        let xss = try await post(#"{"type":"echo","params":{"html":"<script>window.__xss=1</script><img src=x onerror=\"window.__xss=2\">"},"tags":{"note":"<b>bold</b>"}}"#)
        let sleeper = try await post(#"{"type":"sleep","params":{"ms":60000}}"#)
        let doomed = try await post(#"{"type":"fail","params":{"times":1},"max_attempts":1}"#)
        let workflow = try await stack.request(.POST, "/v1/workflows", body: #"{"name":"thumbnails","chain":[{"type":"noop"},{"type":"echo"}]}"#, token: admin)
        let workflowID = try #require(workflow.json?["id"]?.intValue)
        _ = try await stack.waitUntilTerminal([echo, xss, doomed])
        let stacked = stack
        do {
            try await chromium.withPage { page in
                let stack = stacked
                func shot(_ name: String, width: Int = 1280) async throws {
                    guard let shots else { return }
                    try FileManager.default.createDirectory(atPath: shots, withIntermediateDirectories: true)
                    try await page.screenshot(width: width, to: "\(shots)/\(name).png")
                }
                try await page.go(stack.baseURL + "/ui")
                try await shot("login")
                try await signIn(page, stack, secret: admin)
                #expect(try await page.url.hasSuffix("/ui"))
                #expect(try await page.text("#queues").contains("default"))
                try await shot("overview")
                try await shot("overview-phone", width: 390)

                // The task submitted through the API is in the list and opens.
                try await page.go(stack.baseURL + "/ui/tasks?type=echo")
                #expect(try await page.text("#results").contains(String(echo)))
                try await shot("tasks")
                try await page.click("a[href='/ui/tasks/\(echo)']")
                #expect(try await page.text("#params").contains("acme"))
                #expect(try await page.text("#task-status") == "succeeded")
                try await shot("task")

                // User data renders as text, never as markup.
                try await page.go(stack.baseURL + "/ui/tasks/\(xss)")
                #expect(try await page.evaluate("typeof window.__xss") == .string("undefined"))
                #expect(try await page.text("#params").contains("<script>window.__xss=1</script>"))
                #expect(try await page.evaluate("document.querySelectorAll('#params script, #params img, dd b').length") == .integer(0))

                // Cancel and retry clicked in the console reach PostgreSQL.
                try await page.go(stack.baseURL + "/ui/tasks/\(sleeper)")
                try await page.click("#cancel")
                #expect(try await page.text(".notice").contains("cancelled"))
                #expect(try await status(stack, sleeper) == "cancelled")
                try await page.go(stack.baseURL + "/ui/dead")
                #expect(try await page.text("#dead-tasks").contains(String(doomed)))
                try await shot("dead-letters")
                try await page.go(stack.baseURL + "/ui/tasks/\(doomed)")
                try await page.click("#retry")
                #expect(try await status(stack, doomed) != "dead")
                #expect(try await stack.waitUntilTerminal([doomed])[doomed] == .succeeded)

                try await page.go(stack.baseURL + "/ui/workflows")
                #expect(try await page.text("#workflows").contains("thumbnails"))
                try await shot("workflows")
                try await page.go(stack.baseURL + "/ui/workflows/\(workflowID)")
                #expect(try await page.evaluate("document.querySelectorAll('#nodes tr').length") == .integer(3))
                try await shot("workflow")
                try await page.go(stack.baseURL + "/ui/schedules")
                try await shot("schedules")
                try await page.go(stack.baseURL + "/ui/tasks?status=cancelled")
                #expect(try await page.text("#results").contains(String(sleeper)))

                // Signing out ends the session: the console asks to sign in again.
                try await page.click("#sign-out")
                #expect(try await page.url.contains("/ui/login"))
                try await page.go(stack.baseURL + "/ui/tasks")
                #expect(try await page.url.contains("/ui/login"))

                // A read-only token reads but has no buttons, and a POST anyway is refused.
                try await signIn(page, stack, secret: "read-secret-000001")
                try await page.go(stack.baseURL + "/ui/tasks/\(sleeper)")
                #expect(try await page.evaluate("document.querySelectorAll('#cancel, #retry, form[action*=pause]').length") == .integer(0))
                // Every page so far loaded without a console error (the refused POST below logs one on purpose).
                let errors = page.consoleErrors
                #expect(errors.isEmpty, "console errors: \(errors)")
                let refused = try await page.evaluate("""
                    fetch('/ui/tasks/\(echo)/cancel', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'},
                      body: 'csrf=' + encodeURIComponent(document.querySelector('input[name=csrf]').value)}).then(r => r.status)
                    """)
                #expect(refused == .integer(403))
            }
        } catch {
            await chromium.stop()
            try await stack.stop()
            throw error
        }
        await chromium.stop()
        try await stack.stop()
    }
}
