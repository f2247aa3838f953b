import ArgumentParser

struct QueuesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queues",
        abstract: "Queues: list them, pause and resume a queue or one type (admin token).",
        subcommands: [List.self, Pause.self, Resume.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the queues and what is paused in them, as JSON.")

        @OptionGroup var connection: TasksCommand.Connection

        func run() async throws {
            try await call(connection) { try await $0.get("/v1/queues") }
        }
    }

    /// What `pause` and `resume` name: a queue, or one type (in its own queue).
    struct Target: ParsableArguments {
        @Argument(help: "The queue (ignored with --type, whose queue is the type's).") var queue: String?
        @Option(help: "Only this task type.") var type: String?

        func validate() throws {
            if queue == nil && type == nil { throw ValidationError("name a queue, or a type with --type") }
        }

        func path(_ action: String) -> String { QueuesCommand.path(queue: queue, type: type, action: action) }
    }

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pause a queue, or one type with --type: nothing new starts; running tasks finish.")

        @OptionGroup var connection: TasksCommand.Connection
        @OptionGroup var target: Target

        func run() async throws {
            try await call(connection) { try await $0.post(target.path("pause"), json: "{}") }
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Resume a queue, or one type with --type: what waited starts, in order.")

        @OptionGroup var connection: TasksCommand.Connection
        @OptionGroup var target: Target

        func run() async throws {
            try await call(connection) { try await $0.post(target.path("resume"), json: "{}") }
        }
    }

    static func path(queue: String?, type: String?, action: String) -> String {
        if let type { return "/v1/types/\(escaped(type))/\(action)" }
        return "/v1/queues/\(escaped(queue ?? ""))/\(action)"
    }

    /// Names use letters, digits, `_ - . :`; anything else is percent-encoded so the path stays one segment.
    static func escaped(_ name: String) -> String {
        var out = ""
        for byte in name.utf8 {
            let char = Character(UnicodeScalar(byte))
            if char.isLetter || char.isNumber || "_-.:".contains(char), byte < 0x80 { out.append(char) } else { out += String(format: "%%%02X", byte) }
        }
        return out
    }
}
