import ArgumentParser
import AsyncHTTPClient
import ConveyorConfiguration
import ConveyorCore
import Foundation

struct TasksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tasks",
        abstract: "Submit and inspect tasks through a coordinator's HTTP API.",
        subcommands: [Submit.self, Get.self, List.self, Cancel.self, Events.self, Watch.self])

    struct Connection: ParsableArguments {
        @Option(help: "Coordinator URL. [env: CONVEYOR_URL, default http://127.0.0.1:8080]") var url: String?
        @Option(help: "Bearer token. [env: CONVEYOR_API_TOKEN]") var token: String?

        func client() -> (APIClient, HTTPClient) {
            let settings = SettingsReader(overrides: [Settings.clientURL: url, Settings.clientToken: token])
            let base = settings.string(Settings.clientURL, default: Settings.clientURL.defaultValue)
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            let trimmed = base.hasSuffix("/") ? String(base.dropLast()) : base
            return (APIClient(baseURL: trimmed, token: settings.string(Settings.clientToken), http: http), http)
        }
    }

    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Submit one task; prints the coordinator's JSON reply.")

        @OptionGroup var connection: Connection
        @Option(help: "Task type.") var type: String
        @Option(help: "Params, a JSON object.") var params: String = "{}"
        @Option(help: "Queue (default: the type's).") var queue: String?
        @Option(help: "Most attempts (default: the type's).") var maxAttempts: Int?
        @Option(help: "Idempotency key: the same key returns the same task.") var idempotencyKey: String?
        @Option(name: .customLong("tag"), help: "A tag, key=value (repeatable): stored with the task, for finding it later.") var tags: [String] = []
        @Option(help: "Run later: after this long (e.g. 90s, 5m, 2h).") var delay: String?
        @Option(help: "Run later: at this RFC 3339 time (e.g. 2026-12-01T09:30:00Z).") var runAt: String?
        @Option(help: "POST the task's final record here when it finishes (a host the coordinator allows).") var callbackURL: String?
        @Option(help: "low, normal (default) or high: higher starts first.") var priority: String?
        @Option(help: "The value the type's per_key limits count this task under (a customer, a user).") var limitKey: String?

        func validate() throws {
            if let priority, TaskPriority(text: priority) == nil { throw ValidationError("--priority must be low, normal or high") }
            if delay != nil && runAt != nil { throw ValidationError("give --delay or --run-at, not both") }
            if let delay, Duration(configurationText: delay) == nil { throw ValidationError("--delay must be a duration such as 90s, 5m or 2h") }
            if let runAt, RFC3339.parseMillis(runAt) == nil { throw ValidationError("--run-at must be an RFC 3339 time such as 2026-12-01T09:30:00Z") }
        }

        func run() async throws {
            guard let parsed = try? JSONValue.parse(params), case .object = parsed else {
                throw ValidationError("--params must be a JSON object")
            }
            var tagMap: [String: JSONValue] = [:]
            for tag in tags {
                guard let equals = tag.firstIndex(of: "="), equals != tag.startIndex else {
                    throw ValidationError("--tag must be key=value, got '\(tag)'")
                }
                tagMap[String(tag[..<equals])] = .string(String(tag[tag.index(after: equals)...]))
            }
            var body = "{\"type\":"
            JSONValue.writeString(type, into: &body)
            body += ",\"params\":" + parsed.serialized
            if let queue {
                body += ",\"queue\":"
                JSONValue.writeString(queue, into: &body)
            }
            if let maxAttempts { body += ",\"max_attempts\":\(maxAttempts)" }
            if !tagMap.isEmpty { body += ",\"tags\":" + JSONValue.object(tagMap).serialized }
            for (field, value) in [("delay", delay), ("run_at", runAt), ("callback_url", callbackURL), ("priority", priority), ("limit_key", limitKey)] {
                guard let value else { continue }
                body += ",\"\(field)\":"
                JSONValue.writeString(value, into: &body)
            }
            body += "}"
            let (client, http) = connection.client()
            let reply: APIClient.Reply
            do {
                reply = try await client.post("/v1/tasks", json: body, headers: idempotencyKey.map { [("Idempotency-Key", $0)] } ?? [])
            } catch {
                try? await http.shutdown()
                throw LocalServerFailureExit("cannot reach \(client.baseURL): \(error)")
            }
            try? await http.shutdown()
            try report(reply)
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one task as JSON.")

        @OptionGroup var connection: Connection
        @Argument(help: "Task id.") var id: Int64
        @Option(help: "Wait up to this long (e.g. 30s, at most 60s) for the task to finish before answering.") var wait: String?

        func run() async throws {
            if let wait, Duration(configurationText: wait) == nil { throw ValidationError("--wait must be a duration such as 30s") }
            let (client, http) = connection.client()
            let reply: APIClient.Reply
            do {
                reply = try await client.get("/v1/tasks/\(id)" + (wait.map { "?wait=\($0)" } ?? ""))
            } catch {
                try? await http.shutdown()
                throw LocalServerFailureExit("cannot reach \(client.baseURL): \(error)")
            }
            try? await http.shutdown()
            try report(reply)
        }
    }
}

extension TasksCommand {
    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a task: a queued one never runs, a running one is stopped.")

        @OptionGroup var connection: Connection
        @Argument(help: "Task id.") var id: Int64

        func run() async throws {
            try await call(connection) { try await $0.post("/v1/tasks/\(id)/cancel", json: "{}") }
        }
    }
}

/// Prints the reply; a non-2xx status goes to stderr with a non-zero exit.
private func report(_ reply: APIClient.Reply) throws {
    if (200..<300).contains(reply.status) {
        print(reply.body)
    } else {
        FileHandle.standardError.write(Data("HTTP \(reply.status): \(reply.body)\n".utf8))
        throw ExitCode(1)
    }
}

private struct LocalServerFailureExit: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
