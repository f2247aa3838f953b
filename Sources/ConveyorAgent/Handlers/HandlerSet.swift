import ConveyorCore

/// The handlers an agent can run, by name: the built-ins plus whatever an embedding program registers.
public struct HandlerSet: Sendable {
    private var handlers: [String: any TaskHandler]

    /// `noop`, `sleep`, `echo`, `fail` and `steps`. (`command` and `http` are configured per type, see ``resolve(_:)``.)
    public static var builtIns: HandlerSet {
        HandlerSet(handlers: ["noop": NoopHandler(), "sleep": SleepHandler(), "echo": EchoHandler(), "fail": FailHandler(), "steps": StepsHandler()])
    }

    private init(handlers: [String: any TaskHandler]) {
        self.handlers = handlers
    }

    /// Registers an in-process handler; a task type whose registry entry says `handler: <name>` runs it.
    public mutating func register(_ name: String, _ handler: any TaskHandler) {
        handlers[name] = handler
    }

    public mutating func register(_ name: String, _ body: @escaping @Sendable (TaskContext) async throws -> JSONValue?) {
        handlers[name] = ClosureHandler(body)
    }

    /// The handler of every type this agent can run. A task may be sent to any queue (the submission's
    /// `queue` overrides its type's), so types of other queues are resolved too; but a missing handler is
    /// an error only for types whose own queue is served, so a misconfigured agent stops at start
    /// instead of failing tasks later.
    public func resolve(_ registry: TaskTypeRegistry, queues: [String]) throws(ConfigurationError) -> [String: any TaskHandler] {
        var resolved: [String: any TaskHandler] = [:]
        var missing: [String] = []
        for definition in registry.types.values {
            if definition.handler == "command" {
                resolved[definition.name] = CommandHandler(
                    command: definition.command, maxOutputBytes: definition.maxOutputBytes, environment: definition.environment)
            } else if definition.handler == "http", let url = definition.url {
                resolved[definition.name] = HTTPPushHandler(url: url, maxReplyBytes: definition.maxOutputBytes, client: HTTPPushHandler.sharedClient)
            } else if let handler = handlers[definition.handler] {
                resolved[definition.name] = handler
            } else if queues.contains(definition.queue) {
                missing.append("\(definition.name) (handler '\(definition.handler)')")
            }
        }
        if !missing.isEmpty {
            throw ConfigurationError(key: "CONVEYOR_TASK_TYPES", "no handler registered for: \(missing.sorted().joined(separator: ", "))")
        }
        return resolved
    }
}
