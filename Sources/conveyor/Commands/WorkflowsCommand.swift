import ArgumentParser
import ConveyorCore
import Foundation

struct WorkflowsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workflows",
        abstract: "Submit, read, cancel and retry workflows through a coordinator's HTTP API.",
        subcommands: [Submit.self, Get.self, List.self, Cancel.self, Retry.self])

    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Submit a workflow: the body of POST /v1/workflows ({\"name\", \"nodes\" | \"chain\"}) from a file or stdin.")

        @OptionGroup var connection: TasksCommand.Connection
        @Argument(help: "A JSON file with the workflow; '-' or nothing reads standard input.") var file: String?
        @Option(help: "Idempotency key: the same key returns the same workflow.") var idempotencyKey: String?

        func run() async throws {
            let data: Data
            if let file, file != "-" {
                guard let contents = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
                data = contents
            } else {
                data = FileHandle.standardInput.readDataToEndOfFile()
            }
            let text = String(decoding: data, as: UTF8.self)
            guard case .object? = try? JSONValue.parse(text) else { throw ValidationError("the workflow must be a JSON object") }
            let headers = idempotencyKey.map { [("Idempotency-Key", $0)] } ?? []
            try await call(connection) { try await $0.post("/v1/workflows", json: text, headers: headers) }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a workflow: its status, counts per status and every node.")

        @OptionGroup var connection: TasksCommand.Connection
        @Argument(help: "Workflow id.") var id: Int64

        func run() async throws {
            try await call(connection) { try await $0.get("/v1/workflows/\(id)") }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List workflows, newest first (JSON, with next_cursor for the next page).")

        @OptionGroup var connection: TasksCommand.Connection
        @Option(help: "Only this status: running, succeeded, failed or cancelled.") var status: String?
        @Option(help: "Only workflows of this name.") var name: String?
        @Option(help: "Most workflows to show (1–500).") var limit: Int = 50
        @Option(help: "Continue after this cursor (next_cursor of the previous page).") var cursor: String?

        func validate() throws {
            if let status, WorkflowStatus(rawValue: status) == nil {
                throw ValidationError("--status must be running, succeeded, failed or cancelled")
            }
        }

        func run() async throws {
            var query = ["limit=\(limit)"]
            if let status { query.append("status=\(status)") }
            if let name { query.append("name=\(DLQCommand.List.escape(name))") }
            if let cursor { query.append("cursor=\(DLQCommand.List.escape(cursor))") }
            try await call(connection) { try await $0.get("/v1/workflows?" + query.joined(separator: "&")) }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel every node of a running workflow that has not ended.")

        @OptionGroup var connection: TasksCommand.Connection
        @Argument(help: "Workflow id.") var id: Int64

        func run() async throws {
            try await call(connection) { try await $0.post("/v1/workflows/\(id)/cancel", json: "{}") }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-run the failed, dead, cancelled and skipped nodes of an ended workflow; succeeded nodes keep their results.")

        @OptionGroup var connection: TasksCommand.Connection
        @Argument(help: "Workflow id.") var id: Int64

        func run() async throws {
            try await call(connection) { try await $0.post("/v1/workflows/\(id)/retry", json: "{}") }
        }
    }
}
