import ConveyorCore
import ConveyorEmbedded
import Foundation
import Logging
import NIOCore
import Synchronization
import WSClient

/// Debian's headless Chromium driven over the DevTools protocol: a real browser for the console's tests.
/// Started on a free port with a profile of its own, stopped (with its whole process group) at the end.
final class Chromium: Sendable {
    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    let process: ChildProcess
    let directory: String
    let browserURL: String

    static var executable: String? {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static func start() async throws -> Chromium {
        guard let executable else { throw Failure("no Chromium: install Debian's chromium package (the project's install script does)") }
        let directory = try await LocalProcess.makeDirectory(prefix: "conveyor-chromium", ownedByPostgres: false)
        let log = directory + "/chromium.log"
        let process = try await ChildProcess.start(
            executable: executable,
            arguments: [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--disable-background-networking", "--disable-sync",
                "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "--remote-allow-origins=*",
                "--user-data-dir=\(directory)/profile",
                "--window-size=1280,900", "about:blank",
            ],
            workingDirectory: directory, logPath: log)
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let text = try? String(contentsOfFile: log, encoding: .utf8),
                let range = text.range(of: "DevTools listening on ")
            {
                let url = text[range.upperBound...].prefix { !$0.isWhitespace }
                return Chromium(process: process, directory: directory, browserURL: String(url))
            }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        process.signal(SIGKILL)
        throw Failure("Chromium did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    private init(process: ChildProcess, directory: String, browserURL: String) {
        self.process = process
        self.directory = directory
        self.browserURL = browserURL
    }

    func stop() async {
        _ = kill(-process.pid, SIGKILL)
        process.signal(SIGKILL)
        _ = await process.waitForExit()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Opens a tab and runs `body` with it; the DevTools connection lives as long as `body`.
    func withPage<T: Sendable>(_ body: @escaping @Sendable (Page) async throws -> T) async throws -> T {
        let result = Mutex<Result<T, any Error>?>(nil)
        let logger = Logger(label: "conveyor.test.chromium", factory: { _ in SwiftLogNoOpLogHandler() })
        var configuration = WebSocketClientConfiguration()
        configuration.maxFrameSize = 64 << 20
        try await WebSocketClient.connect(url: browserURL, configuration: configuration, logger: logger) { inbound, outbound, _ in
            let page = Page(outbound: outbound)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    var iterator = inbound.makeAsyncIterator()
                    while let message = try await iterator.nextMessage(maxSize: 64 << 20) {
                        if case .text(let text) = message { page.receive(text) }
                    }
                    page.closed()
                }
                let outcome: Result<T, any Error>
                do {
                    try await page.open()
                    outcome = .success(try await body(page))
                } catch {
                    outcome = .failure(error)
                }
                result.withLock { $0 = outcome }
                try await outbound.close(.normalClosure, reason: nil)
                group.cancelAll()
            }
        }
        guard let outcome = result.withLock({ $0 }) else { throw Failure("the DevTools connection closed early") }
        return try outcome.get()
    }

    /// One tab, attached in flat mode: commands carry its session id.
    final class Page: Sendable {
        private let outbound: WebSocketOutboundWriter
        private struct State {
            var nextID = 1
            var waiting: [Int: CheckedContinuation<JSONValue, any Error>] = [:]
            var sessionID: String?
            var loads = 0
            var loadWaiters: [(Int, CheckedContinuation<Void, Never>)] = []
            var consoleErrors: [String] = []
        }
        private let state = Mutex(State())

        init(outbound: WebSocketOutboundWriter) {
            self.outbound = outbound
        }

        /// Errors the page reported: console.error calls, uncaught exceptions, failed loads, CSP refusals.
        var consoleErrors: [String] { state.withLock { $0.consoleErrors } }

        func open() async throws {
            let target = try await send("Target.createTarget", ["url": .string("about:blank")], browserLevel: true)
            guard let targetID = target["targetId"]?.stringValue else { throw Failure("no target: \(target.serialized)") }
            let attached = try await send("Target.attachToTarget", ["targetId": .string(targetID), "flatten": .bool(true)], browserLevel: true)
            guard let session = attached["sessionId"]?.stringValue else { throw Failure("not attached: \(attached.serialized)") }
            state.withLock { $0.sessionID = session }
            for domain in ["Page.enable", "Runtime.enable", "Log.enable"] { _ = try await send(domain) }
        }

        /// Sends a command and waits for its answer (a protocol error throws).
        @discardableResult
        func send(_ method: String, _ params: [String: JSONValue] = [:], browserLevel: Bool = false) async throws -> JSONValue {
            let reply = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<JSONValue, any Error>) in
                let (id, session) = state.withLock { state -> (Int, String?) in
                    let id = state.nextID
                    state.nextID += 1
                    state.waiting[id] = continuation
                    return (id, state.sessionID)
                }
                var message: [String: JSONValue] = ["id": .integer(Int64(id)), "method": .string(method), "params": .object(params)]
                if !browserLevel, let session { message["sessionId"] = .string(session) }
                let text = JSONValue.object(message).serialized
                Task {
                    do {
                        try await outbound.write(.text(text))
                    } catch {
                        if let waiter = state.withLock({ $0.waiting.removeValue(forKey: id) }) { waiter.resume(throwing: error) }
                    }
                }
            }
            if let error = reply["error"] { throw Failure("\(method): \(error.serialized)") }
            return reply["result"] ?? .null
        }

        func receive(_ text: String) {
            guard let message = try? JSONValue.parse(text) else { return }
            if let id = message["id"]?.intValue {
                state.withLock { $0.waiting.removeValue(forKey: Int(id)) }?.resume(returning: message)
                return
            }
            switch message["method"]?.stringValue {
            case "Page.loadEventFired":
                let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                    state.loads += 1
                    let due = state.loadWaiters.filter { $0.0 < state.loads }.map(\.1)
                    state.loadWaiters.removeAll { $0.0 < state.loads }
                    return due
                }
                ready.forEach { $0.resume() }
            case "Runtime.consoleAPICalled" where message["params"]?["type"]?.stringValue == "error":
                let args = message["params"]?["args"]?.arrayValue?.compactMap { $0["value"]?.stringValue ?? $0["description"]?.stringValue } ?? []
                state.withLock { $0.consoleErrors.append("console.error: " + args.joined(separator: " ")) }
            case "Runtime.exceptionThrown":
                let detail = message["params"]?["exceptionDetails"]
                let text = detail?["exception"]?["description"]?.stringValue ?? detail?["text"]?.stringValue ?? "exception"
                state.withLock { $0.consoleErrors.append("exception: " + text) }
            case "Log.entryAdded" where message["params"]?["entry"]?["level"]?.stringValue == "error":
                let entry = message["params"]?["entry"]
                state.withLock { $0.consoleErrors.append("log: \(entry?["text"]?.stringValue ?? "") \(entry?["url"]?.stringValue ?? "")") }
            default:
                break
            }
        }

        func closed() {
            let waiting = state.withLock { state in
                defer { state.waiting = [:] }
                return Array(state.waiting.values)
            }
            waiting.forEach { $0.resume(throwing: Failure("the DevTools connection closed")) }
        }

        /// Runs `action` (which navigates: a URL, a click on a link or a submit) and waits for the new page's load event.
        func navigating(_ action: () async throws -> Void) async throws {
            let seen = state.withLock { $0.loads }
            try await action()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    await withCheckedContinuation { continuation in
                        let already = self.state.withLock { state -> Bool in
                            if state.loads > seen { return true }
                            state.loadWaiters.append((seen, continuation))
                            return false
                        }
                        if already { continuation.resume() }
                    }
                }
                group.addTask {
                    try await Task.sleep(for: .seconds(20))
                    throw Failure("the page did not load within 20 s")
                }
                try await group.next()
                group.cancelAll()
            }
        }

        func go(_ url: String) async throws {
            try await navigating { _ = try await send("Page.navigate", ["url": .string(url)]) }
        }

        /// Evaluates JavaScript in the page and returns its value.
        @discardableResult
        func evaluate(_ expression: String) async throws -> JSONValue {
            let reply = try await send("Runtime.evaluate", ["expression": .string(expression), "returnByValue": .bool(true), "awaitPromise": .bool(true)])
            if let exception = reply["exceptionDetails"] { throw Failure("JavaScript failed: \(exception.serialized)") }
            return reply["result"]?["value"] ?? .null
        }

        /// Clicks the element `selector` names, as a user would (it navigates when it is a link or submit button).
        func click(_ selector: String) async throws {
            try await navigating { try await evaluate("document.querySelector(\(JSONValue.string(selector).serialized)).click()") }
        }

        func text(_ selector: String) async throws -> String {
            try await evaluate("(document.querySelector(\(JSONValue.string(selector).serialized)) || {}).textContent || ''").stringValue ?? ""
        }

        var url: String {
            get async throws { try await evaluate("location.href").stringValue ?? "" }
        }

        /// A PNG of the whole page at the given width (a laptop or a phone).
        func screenshot(width: Int, to path: String) async throws {
            _ = try await send("Emulation.setDeviceMetricsOverride", [
                "width": .integer(Int64(width)), "height": .integer(900), "deviceScaleFactor": .integer(1), "mobile": .bool(width < 700),
            ])
            let shot = try await send("Page.captureScreenshot", ["format": .string("png"), "captureBeyondViewport": .bool(true)])
            guard let base64 = shot["data"]?.stringValue, let data = Data(base64Encoded: base64) else { throw Failure("no screenshot") }
            try data.write(to: URL(fileURLWithPath: path))
        }
    }
}
