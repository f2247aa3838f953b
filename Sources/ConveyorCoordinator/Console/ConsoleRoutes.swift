import ConveyorCore
import ConveyorPostgres
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Mustache

/// The web console at `/ui`: pages rendered on the server from PostgreSQL (through the search's indexes)
/// and Redis (O(1) commands), signed in with an API token. Every state-changing action is a POST that
/// carries the session's CSRF token and needs the admin scope; a read-only token sees no buttons and
/// gets 403 if it posts anyway.
struct ConsoleRoutes: Sendable {
    let pages: ConsolePages
    let sessions: ConsoleSessions
    let actions: TaskActions
    let deadLetters: DeadLetterQueue
    let pauses: QueuePauses
    let lifetime: Duration

    func register(on router: Router<CoordinatorRequestContext>) {
        let open = router.group("ui")
        open.get("assets/console.css") { _, _ in Self.asset(ConsoleAssets.css, type: "text/css; charset=utf-8") }
        open.get("assets/console.js") { _, _ in Self.asset(ConsoleAssets.js, type: "text/javascript; charset=utf-8") }
        open.get("login") { request, _ in try loginPage(request) }
        open.post("login") { request, _ in try await signIn(request) }

        let ui = router.group("ui").add(middleware: ConsoleSessionMiddleware(sessions: sessions, lifetime: lifetime))
        ui.get { request, context in try await pages.overview(request, context) }
        ui.get("tasks") { request, context in try await pages.tasks(request, context) }
        ui.get("tasks/{id}") { request, context in try await pages.task(request, context) }
        ui.get("find") { request, context in try await pages.find(request, context) }
        ui.get("dead") { request, context in try await pages.dead(request, context) }
        ui.get("workflows") { request, context in try await pages.workflows(request, context) }
        ui.get("workflows/{id}") { request, context in try await pages.workflow(request, context) }
        ui.get("schedules") { request, context in try await pages.schedules(request, context) }
        ui.post("logout") { request, context in try await signOut(request, context) }
        ui.post("tasks/{id}/cancel") { request, context in try await act(request, context) { form in try await cancel(form, context) } }
        ui.post("tasks/{id}/retry") { request, context in try await act(request, context) { form in try await retry(form, context) } }
        ui.post("tasks/cancel") { request, context in try await act(request, context) { form in try await bulk(form, context, cancel: true) } }
        ui.post("tasks/retry") { request, context in try await act(request, context) { form in try await bulk(form, context, cancel: false) } }
        ui.post("dead/retry") { request, context in try await act(request, context) { form in try await retryType(form, context) } }
        ui.post("workflows/{id}/cancel") { request, context in try await act(request, context) { form in try await workflow(form, context, cancel: true) } }
        ui.post("workflows/{id}/retry") { request, context in try await act(request, context) { form in try await workflow(form, context, cancel: false) } }
        ui.post("queues/{queue}/pause") { request, context in try await act(request, context) { form in try await pause(form, context, pause: true) } }
        ui.post("queues/{queue}/resume") { request, context in try await act(request, context) { form in try await pause(form, context, pause: false) } }
        ui.post("types/{type}/resume") { request, context in try await act(request, context) { form in try await resumeType(form, context) } }
    }

    // MARK: Signing in and out

    private func loginPage(_ request: Request) throws -> Response {
        let next = Self.safeNext(request.uri.queryParameters["next"].map(String.init))
        var page = pages.frame(title: "Sign in", signedIn: false)
        page["next"] = next
        page["lifetime"] = Self.describe(lifetime)
        if request.uri.queryParameters["failed"] != nil { page["problem"] = "That token is not valid for the console." }
        if request.uri.queryParameters["signed-out"] != nil { page["notice"] = "Signed out." }
        return try pages.render("login", page)
    }

    private func signIn(_ request: Request) async throws -> Response {
        let form = try await ConsoleForm.read(request)
        let next = Self.safeNext(form["next"])
        let presented = Array((form["token"] ?? "").utf8)
        guard !sessions.authDisabled else { return Self.redirect(next) }
        guard let token = AuthMiddleware.match(presented, in: sessions.tokens), token.allows(.read) else {
            return Self.redirect("/ui/login?failed=1&next=\(ConsoleForm.encode(next))")
        }
        let (cookie, _) = sessions.open(for: token, nowMillis: WallClock.nowMillis())
        var response = Self.redirect(next)
        response.headers[values: .setCookie].append(ConsoleSessionMiddleware.cookie(cookie, maxAge: lifetime, secure: Self.isSecure(request)))
        return response
    }

    private func signOut(_ request: Request, _ context: CoordinatorRequestContext) async throws -> Response {
        let form = try await ConsoleForm.read(request)
        guard let session = context.consoleSession, ConsoleSessions.csrfMatches(form["csrf"], session) else { return try pages.csrfRefused() }
        sessions.close(session)
        var response = Self.redirect("/ui/login?signed-out=1")
        response.headers[values: .setCookie].append(ConsoleSessionMiddleware.cookie("", maxAge: .zero, secure: Self.isSecure(request)))
        return response
    }

    // MARK: Actions

    /// Reads the form, checks its CSRF token and the admin scope, then runs `body`, which answers with
    /// where to go and what to say there.
    private func act(
        _ request: Request, _ context: CoordinatorRequestContext, _ body: (ConsoleForm) async throws -> (to: String, notice: String)
    ) async throws -> Response {
        let form = try await ConsoleForm.read(request)
        guard let session = context.consoleSession, ConsoleSessions.csrfMatches(form["csrf"], session) else { return try pages.csrfRefused() }
        guard context.allows(.admin) else { return try pages.forbidden(context) }
        do {
            let (to, notice) = try await body(form)
            return Self.redirect(Self.withNotice(Self.safeNext(form["back"] ?? to), notice))
        } catch let error as APIError {
            return Self.redirect(Self.withNotice(Self.safeNext(form["back"] ?? "/ui"), error.message, problem: true))
        } catch let error as WorkflowActionError {
            return Self.redirect(Self.withNotice(Self.safeNext(form["back"] ?? "/ui/workflows"), error.description, problem: true))
        } catch TaskActions.ActionError.statusesNotApplicable(let message) {
            return Self.redirect(Self.withNotice(Self.safeNext(form["back"] ?? "/ui/tasks"), message, problem: true))
        } catch {
            context.logger.error("console action failed", metadata: ["error": "\(error)"])
            return Self.redirect(Self.withNotice(Self.safeNext(form["back"] ?? "/ui"), "The action failed: \(error)", problem: true))
        }
    }

    private func taskID(_ context: CoordinatorRequestContext) throws -> TaskID {
        guard let id = context.parameters.get("id").flatMap({ TaskID($0) }) else { throw APIError.notFound("no such task") }
        return id
    }

    private func cancel(_ form: ConsoleForm, _ context: CoordinatorRequestContext) async throws -> (to: String, notice: String) {
        let id = try taskID(context)
        context.logAdminAction("cancel (console)", target: "task \(id)")
        guard let (queue, status) = try await actions.store.queueAndStatus(of: id) else { throw APIError.notFound("no task with id \(id)") }
        let cancelled = try await actions.cancel([(id, queue, status)])
        return ("/ui/tasks/\(id)", cancelled.isEmpty ? "Task \(id) had already finished (\(status.rawValue))." : "Task \(id) cancelled.")
    }

    private func retry(_ form: ConsoleForm, _ context: CoordinatorRequestContext) async throws -> (to: String, notice: String) {
        let id = try taskID(context)
        context.logAdminAction("retry (console)", target: "task \(id)")
        guard let status = try await actions.store.status(of: id) else { throw APIError.notFound("no task with id \(id)") }
        switch status {
        case .dead:
            let retried = try await deadLetters.redrive([id])
            return ("/ui/tasks/\(id)", retried.isEmpty ? "Task \(id) could not be retried: retention is about to remove it." : "Task \(id) queued again.")
        case .failed:
            guard let workflow = try await actions.store.get(id)?.workflowID else {
                return ("/ui/tasks/\(id)", "Task \(id) failed outside a workflow: nothing to retry it with.")
            }
            _ = try await actions.retryWorkflow(WorkflowID(rawValue: workflow))
            return ("/ui/tasks/\(id)", "Task \(id) failed because a dependency did not succeed: its workflow \(workflow) runs again.")
        default:
            return ("/ui/tasks/\(id)", "Task \(id) is \(status.rawValue): only failed or dead tasks are retried.")
        }
    }

    private func bulk(_ form: ConsoleForm, _ context: CoordinatorRequestContext, cancel: Bool) async throws -> (to: String, notice: String) {
        let query = form["query"] ?? ""
        let pairs = ConsoleForm(encoded: query).pairs.filter { !$0.value.isEmpty }
        let filter = try TaskFilterParser.filter(pairs, extra: ["cursor", "limit"])
        guard !filter.isEmpty else { throw APIError.badRequest("choose at least one filter first", code: "filter_required") }
        context.logAdminAction("\(cancel ? "cancel" : "retry") in bulk (console)", target: "up to 1000 tasks matching \(query)")
        let outcome = cancel
            ? try await actions.cancel(matching: filter, bound: TaskActions.defaultBound)
            : try await actions.retry(matching: filter, bound: TaskActions.defaultBound)
        let verb = cancel ? "Cancelled" : "Retried"
        return ("/ui/tasks?\(query)", "\(verb) \(outcome.actedOn) task\(outcome.actedOn == 1 ? "" : "s")\(outcome.more ? "; more match: run it again" : ".")")
    }

    private func retryType(_ form: ConsoleForm, _ context: CoordinatorRequestContext) async throws -> (to: String, notice: String) {
        guard let type = form["type"], !type.isEmpty else { throw APIError.badRequest("no type given", code: "invalid_field") }
        context.logAdminAction("redrive all (console)", target: "type \(type)")
        let count = try await deadLetters.redriveAll(type: type)
        return ("/ui/dead", "Queued \(count) dead \(type) task\(count == 1 ? "" : "s") again.")
    }

    private func workflow(_ form: ConsoleForm, _ context: CoordinatorRequestContext, cancel: Bool) async throws -> (to: String, notice: String) {
        guard let id = context.parameters.get("id").flatMap({ WorkflowID($0) }) else { throw APIError.notFound("no such workflow") }
        context.logAdminAction("\(cancel ? "cancel" : "retry") (console)", target: "workflow \(id)")
        if cancel {
            let count = try await actions.cancelWorkflow(id)
            return ("/ui/workflows/\(id)", "Workflow \(id) cancelled (\(count) node\(count == 1 ? "" : "s")).")
        }
        let advance = try await actions.retryWorkflow(id)
        return ("/ui/workflows/\(id)", "Workflow \(id) running again (\(advance.queued.count) node\(advance.queued.count == 1 ? "" : "s") started).")
    }

    private func pause(_ form: ConsoleForm, _ context: CoordinatorRequestContext, pause: Bool) async throws -> (to: String, notice: String) {
        let queue = context.parameters.get("queue") ?? ""
        guard pauses.registry.queues.contains(queue) else { throw APIError.notFound("no queue '\(queue)'") }
        context.logAdminAction(pause ? "pause (console)" : "resume (console)", target: "queue \(queue)")
        if pause {
            _ = try await pauses.pause(.init(queue: queue, type: nil), by: context.token?.name)
            return ("/ui", "Queue \(queue) paused: agents start nothing new from it.")
        }
        let outcome = try await pauses.resume(.init(queue: queue, type: nil))
        return ("/ui", "Queue \(queue) resumed\(outcome.requeued > 0 ? " (\(outcome.requeued) parked entries back on the ready streams)" : "").")
    }

    private func resumeType(_ form: ConsoleForm, _ context: CoordinatorRequestContext) async throws -> (to: String, notice: String) {
        let type = context.parameters.get("type") ?? ""
        guard let definition = pauses.registry[type] else { throw APIError.notFound("no type '\(type)'") }
        context.logAdminAction("resume (console)", target: "type \(type)")
        let outcome = try await pauses.resume(.init(queue: definition.queue, type: type))
        return ("/ui/schedules", "Type \(type) resumed\(outcome.requeued > 0 ? " (\(outcome.requeued) parked entries back)" : "").")
    }

    // MARK: Helpers

    static func asset(_ text: String, type: String) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: type, .cacheControl: "public, max-age=300", HTTPField.Name("X-Content-Type-Options")!: "nosniff"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
    }

    /// A local console path to go back to, never another site (`//evil.example` included).
    static func safeNext(_ next: String?) -> String {
        guard let next, next.hasPrefix("/ui"), !next.hasPrefix("//"), !next.contains("\\"),
            !next.unicodeScalars.contains(where: { $0.value < 0x20 })
        else { return "/ui" }
        return next
    }

    static func withNotice(_ path: String, _ text: String, problem: Bool = false) -> String {
        let separator = path.contains("?") ? "&" : "?"
        return path + separator + (problem ? "problem=" : "notice=") + ConsoleForm.encode(text)
    }

    /// Whether the browser reached the coordinator over TLS (directly, or through a proxy that says so).
    static func isSecure(_ request: Request) -> Bool {
        request.uri.scheme == .https || request.headers[HTTPField.Name("X-Forwarded-Proto")!]?.lowercased() == "https"
    }

    static func describe(_ duration: Duration) -> String {
        let seconds = duration.components.seconds
        if seconds % 3600 == 0 { return "\(seconds / 3600) hour\(seconds == 3600 ? "" : "s")" }
        if seconds % 60 == 0 { return "\(seconds / 60) minutes" }
        return "\(seconds) seconds"
    }
}

/// Proves the console session on every page and action: a valid cookie puts its token in the request
/// context (so the scopes apply as on the API); without one, a page redirects to the sign-in form.
/// With authentication disabled, an anonymous session is opened on the first visit (its CSRF token
/// still guards every action). Adds the console's security headers to every answer.
struct ConsoleSessionMiddleware: RouterMiddleware {
    let sessions: ConsoleSessions
    let lifetime: Duration

    static let contentSecurityPolicy =
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
        + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

    func handle(
        _ request: Request, context: CoordinatorRequestContext,
        next: (Request, CoordinatorRequestContext) async throws -> Response
    ) async throws -> Response {
        var context = context
        let now = WallClock.nowMillis()
        var newCookie: String?
        if let value = request.cookies[ConsoleSessions.cookieName]?.value, let session = sessions.verify(value, nowMillis: now) {
            context.consoleSession = session
        } else if sessions.authDisabled {
            let (cookie, session) = sessions.open(for: nil, nowMillis: now)
            context.consoleSession = session
            newCookie = cookie
        } else {
            let path = request.uri.path + (request.uri.query.map { "?\($0)" } ?? "")
            let target = request.method == .get ? path : "/ui"
            return ConsoleRoutes.redirect("/ui/login?next=\(ConsoleForm.encode(target))")
        }
        context.token = context.consoleSession?.token
        context.authenticated = !sessions.authDisabled
        var response = try await next(request, context)
        if let newCookie {
            response.headers[values: .setCookie].append(Self.cookie(newCookie, maxAge: lifetime, secure: ConsoleRoutes.isSecure(request)))
        }
        response.headers[HTTPField.Name("Content-Security-Policy")!] = Self.contentSecurityPolicy
        response.headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "same-origin"
        return response
    }

    /// The session cookie: HttpOnly, SameSite=Strict, scoped to /ui, Secure over TLS; Max-Age 0 deletes it.
    static func cookie(_ value: String, maxAge: Duration, secure: Bool) -> String {
        "\(ConsoleSessions.cookieName)=\(value); Path=/ui; Max-Age=\(maxAge.components.seconds); HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "")
    }
}
