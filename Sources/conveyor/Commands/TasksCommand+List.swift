import ArgumentParser
import ConveyorCore
import Foundation

extension TasksCommand {
    /// `conveyor tasks list`: the search of `GET /v1/tasks` as a table (or the JSON reply).
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find tasks, newest first: by status, type, queue, tag, correlation id, idempotency key, time range or error text.")

        @OptionGroup var connection: Connection
        @Option(help: "Only these statuses (repeatable, or comma-separated): scheduled, waiting, queued, running, succeeded, failed, retrying, dead, cancelled, skipped.")
        var status: [String] = []
        @Option(help: "Only this task type.") var type: String?
        @Option(help: "Only this queue.") var queue: String?
        @Option(name: .customLong("tag"), help: "Only tasks with this tag, key=value (repeatable: all must match).") var tags: [String] = []
        @Option(help: "Only the tasks of this correlation id (a request's X-Correlation-ID).") var correlationID: String?
        @Option(help: "Only the task submitted with this idempotency key.") var idempotencyKey: String?
        @Option(help: "Created at or after this RFC 3339 time.") var createdAfter: String?
        @Option(help: "Created at or before this RFC 3339 time.") var createdBefore: String?
        @Option(help: "Finished at or after this RFC 3339 time.") var finishedAfter: String?
        @Option(help: "Finished at or before this RFC 3339 time.") var finishedBefore: String?
        @Option(help: "Only tasks whose error contains this text (any case).") var error: String?
        @Option(help: "Most tasks to show (1–500).") var limit: Int = 50
        @Option(help: "Continue from here: the cursor the previous page printed.") var cursor: String?
        @Flag(help: "Print the coordinator's JSON reply instead of a table.") var json = false

        func validate() throws {
            for word in status.flatMap({ $0.split(separator: ",") }) where TaskStatus(rawValue: String(word)) == nil {
                throw ValidationError("--status: unknown status '\(word)'")
            }
            for tag in tags where !tag.contains("=") || tag.hasPrefix("=") {
                throw ValidationError("--tag must be key=value, got '\(tag)'")
            }
            for (name, value) in [("created-after", createdAfter), ("created-before", createdBefore),
                                  ("finished-after", finishedAfter), ("finished-before", finishedBefore)] {
                if let value, RFC3339.parseMillis(value) == nil {
                    throw ValidationError("--\(name) must be an RFC 3339 time such as 2026-12-01T09:30:00Z")
                }
            }
            guard (1...500).contains(limit) else { throw ValidationError("--limit must be 1–500") }
        }

        /// The query string of the search.
        var query: String {
            var pairs: [(String, String)] = status.flatMap { $0.split(separator: ",") }.map { ("status", String($0)) }
            pairs += tags.map { tag in
                let equals = tag.firstIndex(of: "=")!
                return ("tag", tag[..<equals] + ":" + tag[tag.index(after: equals)...])
            }
            let optional: [(String, String?)] = [
                ("type", type), ("queue", queue), ("correlation_id", correlationID), ("idempotency_key", idempotencyKey),
                ("created_after", createdAfter), ("created_before", createdBefore), ("finished_after", finishedAfter),
                ("finished_before", finishedBefore), ("error", error), ("cursor", cursor),
            ]
            pairs += optional.compactMap { name, value in value.map { (name, $0) } }
            pairs.append(("limit", String(limit)))
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-._~:")
            return pairs.map { "\($0)=\($1.addingPercentEncoding(withAllowedCharacters: allowed) ?? $1)" }.joined(separator: "&")
        }

        func run() async throws {
            let (client, http) = connection.client()
            let reply: APIClient.Reply
            do {
                reply = try await client.get("/v1/tasks?" + query)
            } catch {
                try? await http.shutdown()
                FileHandle.standardError.write(Data("conveyor: cannot reach \(client.baseURL): \(error)\n".utf8))
                throw ExitCode(1)
            }
            try? await http.shutdown()
            guard (200..<300).contains(reply.status) else {
                FileHandle.standardError.write(Data("HTTP \(reply.status): \(reply.body)\n".utf8))
                throw ExitCode(1)
            }
            if json {
                print(reply.body)
                return
            }
            guard let page = try? JSONValue.parse(reply.body) else {
                FileHandle.standardError.write(Data("conveyor: the coordinator's reply is not JSON\n".utf8))
                throw ExitCode(1)
            }
            print(TaskTable.render(page["tasks"]?.arrayValue ?? []), terminator: "")
            if let next = page["next_cursor"]?.stringValue {
                print("more: add --cursor \(next)")
            }
        }
    }
}

/// The table `conveyor tasks list` prints: one line per task, columns as wide as their widest cell.
enum TaskTable {
    static let columns = ["ID", "STATUS", "TYPE", "QUEUE", "ATTEMPTS", "CREATED", "FINISHED", "ERROR"]
    static let errorWidth = 60

    static func render(_ tasks: [JSONValue]) -> String {
        guard !tasks.isEmpty else { return "no tasks match\n" }
        let rows = tasks.map { task -> [String] in
            let attempts = "\(task["attempts"]?.intValue ?? 0)/\(task["max_attempts"]?.intValue ?? 0)"
            var error = (task["error"]?.stringValue ?? "").replacingOccurrences(of: "\n", with: " ")
            if error.count > errorWidth { error = String(error.prefix(errorWidth - 1)) + "…" }
            return [
                task["id"]?.intValue.map(String.init) ?? "", task["status"]?.stringValue ?? "", task["type"]?.stringValue ?? "",
                task["queue"]?.stringValue ?? "", attempts, task["created_at"]?.stringValue ?? "-",
                task["finished_at"]?.stringValue ?? "-", error,
            ]
        }
        let widths = columns.indices.map { column in ([columns[column]] + rows.map { $0[column] }).map(\.count).max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces) + "\n"
        }
        return ([line(columns)] + rows.map(line)).joined()
    }
}
