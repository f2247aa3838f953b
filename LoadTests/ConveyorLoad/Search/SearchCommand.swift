import ArgumentParser
import AsyncHTTPClient
import ConveyorCore
import Foundation
import NIOCore

/// `conveyor-load search`: fills an embedded stack's PostgreSQL with a week of history, then times the
/// search API's common filters through HTTP, first page and pages deep, and reports P50/P95/max per
/// filter. Run it at 1,000 and at 10,000,000 tasks to see that a page costs the same.
struct SearchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Time GET /v1/tasks with the common filters on a table of --tasks tasks.",
        discussion: """
            Examples:
              conveyor-load search --tasks 10000000     (fill ten million tasks, then time every filter)
              conveyor-load search --tasks 1000         (the same filters on a small table)
            Exit status: 0 when every request answered 200; 1 otherwise.
            """)

    @Option(help: "Tasks to fill the table with.") var tasks = 1_000_000
    @Option(help: "Requests per filter (each walks --pages pages).") var requests = 40
    @Option(help: "Pages each request follows with the cursor.") var pages = 5
    @Option(help: "Extra URL paths to time (repeatable); /ui paths are fetched signed in to the console.") var path: [String] = []
    @Option(help: "The conveyor binary (default: next to conveyor-load).") var conveyor: String?
    @Flag(help: "Keep the embedded stack's folder.") var keep = false

    func validate() throws {
        guard tasks >= 1_000, requests > 0, pages > 0 else { throw ValidationError("--tasks at least 1000; --requests and --pages positive") }
    }

    func run() async throws {
        let binary = conveyor ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("conveyor").path
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw ValidationError("no conveyor binary at \(binary): build it (swift build -c release) or pass --conveyor")
        }
        print("conveyor-load: starting Redis, PostgreSQL, a coordinator and an agent…")
        let stack = try await LoadStack.start(conveyor: binary, agents: 1, agentConcurrency: 16, redisURL: nil, environment: [:])
        let interrupt = InterruptHandler { await stack.shutdown(keep: false) }
        var passed = false
        do {
            print("filling \(tasks) tasks…")
            let seconds = try await SearchFill(url: stack.postgres.url, tasks: tasks).run { done in
                print("  \(done) rows")
            }
            print(String(format: "filled in %.0f s (VACUUM ANALYZE included)", seconds))
            passed = try await measure(stack)
        } catch {
            interrupt.cancel()
            await stack.shutdown(keep: keep)
            throw error
        }
        interrupt.cancel()
        await stack.shutdown(keep: keep)
        if !passed { throw ExitCode(1) }
    }

    /// The filters people use most, as query strings, with a name for the report.
    static func filters(now: Int64) -> [(name: String, query: String)] {
        let day: Int64 = 86_400_000
        return [
            ("newest (no filter)", ""),
            ("status=dead", "status=dead"),
            ("status=failed,dead&error=timeout", "status=failed,dead&error=timeout"),
            ("type=steps (0.1 %)", "type=steps"),
            ("queue=bulk (1 %)", "queue=bulk"),
            ("tag=customer:c42", "tag=customer:c42"),
            ("correlation_id", "correlation_id=corr-12345"),
            ("idempotency_key", "idempotency_key=key-50000"),
            ("created 3 to 2 days ago", "created_after=\(UTCTime.format(millis: now - 3 * day))&created_before=\(UTCTime.format(millis: now - 2 * day))"),
            ("finished 6 days ago, dead", "finished_before=\(UTCTime.format(millis: now - 6 * day))&status=dead"),
            ("status=succeeded&type=echo", "status=succeeded&type=echo"),
            ("error=upstream (no index)", "error=upstream"),
        ]
    }

    /// The console's pages, rendered on the server from the same history (a cursor page of /ui/tasks
    /// follows its "Older" link like the API's).
    static func consolePages(tasks: Int) -> [(name: String, path: String)] {
        [
            ("console: overview", "/ui"), ("console: tasks, newest", "/ui/tasks"), ("console: tasks, status=dead", "/ui/tasks?status=dead"),
            ("console: tasks, type=steps", "/ui/tasks?type=steps"), ("console: tasks, error text", "/ui/tasks?error=upstream"),
            ("console: a task", "/ui/tasks/\(tasks / 2 + 7)"), ("console: dead letters", "/ui/dead"), ("console: workflows", "/ui/workflows"),
        ]
    }

    private func measure(_ stack: LoadStack) async throws -> Bool {
        var ok = true
        let now = WallClock.nowMillis()
        let cookie = try await signIn(stack)
        print("")
        print("filter                                  requests  pages   P50 ms   P95 ms   max ms  rows/page")
        var cases = Self.filters(now: now).map { (name: $0.name, path: "/v1/tasks?limit=50&" + $0.query) }
        cases += Self.consolePages(tasks: tasks)
        cases += path.map { (name: $0, path: $0) }
        for (name, base) in cases {
            var timings: [Double] = []
            var rows = 0
            var pageCount = 0
            for _ in 0..<requests {
                var cursor: String?
                for _ in 0..<pages {
                    let separator = base.contains("?") ? "&" : "?"
                    let url = stack.baseURL + base + (cursor.map { "\(separator)cursor=\($0)" } ?? "")
                    let started = ContinuousClock.now
                    let (status, body) = try await get(url, cookie: base.hasPrefix("/ui") ? cookie : nil)
                    let elapsed = ContinuousClock.now - started
                    timings.append(Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000)
                    guard status == 200 else {
                        print("  \(name): HTTP \(status): \(body.prefix(200))")
                        ok = false
                        break
                    }
                    pageCount += 1
                    if base.hasPrefix("/ui") {
                        rows += body.components(separatedBy: "<a class=\"mono\" href=\"/ui/tasks/").count - 1
                        cursor = Self.olderCursor(body)
                    } else {
                        let json = try? JSONValue.parse(body)
                        rows += json?["tasks"]?.arrayValue?.count ?? 0
                        cursor = json?["next_cursor"]?.stringValue
                    }
                    if cursor == nil { break }
                }
            }
            timings.sort()
            func percentile(_ p: Double) -> Double { timings.isEmpty ? 0 : timings[min(timings.count - 1, Int(Double(timings.count) * p))] }
            print(String(format: "%@ %8d %6d %8.1f %8.1f %8.1f %10.1f",
                         name.padding(toLength: 38, withPad: " ", startingAt: 0), requests, pageCount,
                         percentile(0.5), percentile(0.95), timings.last ?? 0, pageCount == 0 ? 0 : Double(rows) / Double(pageCount)))
        }
        return ok
    }

    /// The cursor of a console page's "Older" link.
    static func olderCursor(_ html: String) -> String? {
        guard let link = html.range(of: "id=\"older\"") ?? html.range(of: ">Older →<") else { return nil }
        let before = html[..<link.lowerBound]
        guard let cursor = before.range(of: "cursor=", options: .backwards) else { return nil }
        let digits = before[cursor.upperBound...].prefix { $0.isNumber }
        return digits.isEmpty ? nil : String(digits)
    }

    /// Signs in to the console with the stack's token; returns the session cookie.
    private func signIn(_ stack: LoadStack) async throws -> String {
        var request = HTTPClientRequest(url: stack.baseURL + "/ui/login")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.body = .bytes(ByteBuffer(string: "token=\(LoadStack.token)&next=%2Fui"))
        // Not HTTPClient.shared: it follows the 303, and the cookie comes with the 303 itself.
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: .init(redirectConfiguration: .disallow))
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .seconds(30))
            try await client.shutdown()
        } catch {
            try? await client.shutdown()
            throw error
        }
        guard let header = response.headers["Set-Cookie"].first, let cookie = header.split(separator: ";").first else {
            throw ValidationError("the console did not sign in (HTTP \(response.status.code))")
        }
        return String(cookie)
    }

    private func get(_ url: String, cookie: String? = nil) async throws -> (Int, String) {
        var request = HTTPClientRequest(url: url)
        if let cookie { request.headers.add(name: "Cookie", value: cookie) } else { request.headers.add(name: "Authorization", value: "Bearer \(LoadStack.token)") }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 16 << 20)
        return (Int(response.status.code), String(buffer: body))
    }
}
