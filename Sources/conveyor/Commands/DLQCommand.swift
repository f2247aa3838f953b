import ArgumentParser
import AsyncHTTPClient
import ConveyorCore
import Foundation

struct DLQCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq",
        abstract: "List and redrive dead-lettered tasks through a coordinator's HTTP API.",
        subcommands: [List.self, Retry.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List dead letters (JSON, with next_cursor for the next page).")

        @OptionGroup var connection: TasksCommand.Connection
        @Option(help: "Only this task type.") var type: String?
        @Option(help: "Most dead letters to show (1–1000).") var limit: Int = 100
        @Option(help: "Continue after this cursor (next_cursor of the previous page).") var cursor: String?

        func run() async throws {
            var query = ["limit=\(limit)"]
            if let type { query.append("type=\(Self.escape(type))") }
            if let cursor { query.append("cursor=\(Self.escape(cursor))") }
            try await call(connection) { try await $0.get("/v1/dead?" + query.joined(separator: "&")) }
        }

        static func escape(_ text: String) -> String {
            text.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+"))) ?? text
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Redrive one dead task, or all of them (optionally of one type).")

        @OptionGroup var connection: TasksCommand.Connection
        @Argument(help: "Task id to redrive.") var id: Int64?
        @Flag(help: "Redrive every dead letter.") var all = false
        @Option(help: "With --all: only this task type.") var type: String?

        func validate() throws {
            guard (id != nil) != all else { throw ValidationError("give a task id or --all, not both") }
            if type != nil && !all { throw ValidationError("--type goes with --all") }
        }

        func run() async throws {
            if let id {
                try await call(connection) { try await $0.post("/v1/dead/\(id)/retry", json: "{}") }
            } else {
                let query = type.map { "?type=\(List.escape($0))" } ?? ""
                try await call(connection) { try await $0.post("/v1/dead/retry" + query, json: "{}") }
            }
        }
    }
}

/// Runs one API call and reports it: the body on stdout for 2xx, else status and body on stderr and exit 1.
func call(_ connection: TasksCommand.Connection, _ request: (APIClient) async throws -> APIClient.Reply) async throws {
    let (client, http) = connection.client()
    let reply: APIClient.Reply
    do {
        reply = try await request(client)
    } catch {
        try? await http.shutdown()
        FileHandle.standardError.write(Data("conveyor: cannot reach \(client.baseURL): \(error)\n".utf8))
        throw ExitCode(1)
    }
    try? await http.shutdown()
    if (200..<300).contains(reply.status) {
        print(reply.body)
    } else {
        FileHandle.standardError.write(Data("HTTP \(reply.status): \(reply.body)\n".utf8))
        throw ExitCode(1)
    }
}
