import ArgumentParser
import AsyncHTTPClient
import ConveyorCore
import Foundation
import NIOCore

extension TasksCommand {
    struct Events: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a task's history, oldest first: queued, dispatched, running, progress, retries, the outcome.")

        @OptionGroup var connection: Connection
        @Argument(help: "Task id.") var id: Int64
        @Flag(help: "One JSON object per line instead of text.") var json = false

        func run() async throws {
            let (client, http) = connection.client()
            do {
                try await printAll(client)
            } catch {
                try? await http.shutdown()
                throw error
            }
            try? await http.shutdown()
        }

        private func printAll(_ client: APIClient) async throws {
            var cursor: String?
            repeat {
                let path = "/v1/tasks/\(id)/events?limit=1000" + (cursor.map { "&cursor=\(Self.escape($0))" } ?? "")
                let reply: APIClient.Reply
                do {
                    reply = try await client.get(path)
                } catch {
                    throw CLIError("cannot reach \(client.baseURL): \(error)")
                }
                guard reply.status == 200, let page = try? JSONValue.parse(reply.body) else {
                    FileHandle.standardError.write(Data("HTTP \(reply.status): \(reply.body)\n".utf8))
                    throw ExitCode(1)
                }
                for item in page["events"]?.arrayValue ?? [] {
                    print(json ? item.serialized : TimelineText.line(item))
                }
                cursor = page["next_cursor"]?.stringValue
            } while cursor != nil
        }

        static func escape(_ cursor: String) -> String {
            cursor.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? cursor
        }
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Follow a task live (its stream): print each step and its progress until it finishes.",
            discussion: "Reconnects with Last-Event-ID if the connection drops. Exit status: 0 when the task succeeded, 1 otherwise.")

        @OptionGroup var connection: Connection
        @Argument(help: "Task id.") var id: Int64
        @Flag(help: "One JSON object per line instead of text.") var json = false

        func run() async throws {
            let (client, http) = connection.client()
            var lastID: String?
            var outcome: String?
            var failures = 0
            while outcome == nil {
                var request = HTTPClientRequest(url: client.baseURL + "/v1/tasks/\(id)/stream")
                if let token = client.token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
                if let lastID { request.headers.add(name: "Last-Event-ID", value: lastID) }
                do {
                    let response = try await http.execute(request, timeout: .seconds(30))
                    if response.status == .noContent { break }  // finished before we (re)connected
                    guard response.status == .ok else {
                        let body = try await response.body.collect(upTo: 1 << 20)
                        try? await http.shutdown()
                        FileHandle.standardError.write(Data("HTTP \(response.status.code): \(String(buffer: body))\n".utf8))
                        throw ExitCode(1)
                    }
                    var parser = ServerSentEventParser()
                    for try await buffer in response.body {
                        for event in parser.feed(buffer.readableBytesView) {
                            lastID = event.id ?? lastID
                            guard let item = try? JSONValue.parse(event.data) else { continue }
                            print(json ? item.serialized : TimelineText.line(item))
                            if TaskStatus(rawValue: event.event)?.isTerminal == true { outcome = event.event }
                        }
                    }
                    failures = 0
                } catch let exit as ExitCode {
                    throw exit
                } catch {
                    failures += 1
                    if failures > 30 {
                        try? await http.shutdown()
                        throw CLIError("lost the stream of task \(id): \(error)")
                    }
                    try? await Task.sleep(for: .seconds(1))
                }
            }
            if outcome == nil {
                // Finished while we were away: the task itself says how.
                let reply = try? await client.get("/v1/tasks/\(id)")
                outcome = reply.flatMap { try? JSONValue.parse($0.body) }?["status"]?.stringValue
            }
            try? await http.shutdown()
            if outcome != TaskStatus.succeeded.rawValue { throw ExitCode(1) }
        }
    }
}

/// One history item as a line of text: time, step, attempt and what the step says.
enum TimelineText {
    static func line(_ item: JSONValue) -> String {
        let kind = item["kind"]?.stringValue ?? "?"
        var line = (item["at"]?.stringValue ?? "") + "  " + kind.padding(toLength: 10, withPad: " ", startingAt: 0)
        if let attempt = item["attempt"]?.intValue, attempt > 0 { line += "  attempt \(attempt)" }
        if let agent = item["agent"]?.stringValue { line += "  on \(agent)" }
        if let progress = item["progress"], progress != .null { line += "  " + bar(progress) }
        if let error = item["error"]?.stringValue { line += "  error: \(error)" }
        if let next = item["next_attempt_at"]?.stringValue { line += "  next attempt at \(next)" }
        if let result = item["result"], result != .null { line += "  result: \(result.serialized)" }
        return line
    }

    /// `[#####-----]  50%  step 2/4  message`
    static func bar(_ progress: JSONValue) -> String {
        var parts: [String] = []
        let fraction: Double? = switch progress["fraction"] {
        case .double(let value)?: value
        case .integer(let value)?: Double(value)
        default: nil
        }
        if let fraction {
            let filled = Int((fraction * 20).rounded())
            parts.append("[" + String(repeating: "#", count: filled) + String(repeating: "-", count: 20 - filled) + "]")
            parts.append("\(Int((fraction * 100).rounded()))%")
        }
        if let step = progress["step"]?.intValue {
            parts.append("step \(step)" + (progress["total_steps"]?.intValue.map { "/\($0)" } ?? ""))
        }
        if let message = progress["message"]?.stringValue { parts.append(message) }
        return parts.joined(separator: "  ")
    }
}

struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
