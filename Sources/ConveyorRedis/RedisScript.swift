import Synchronization

/// A Lua script run with EVALSHA, loaded on first use and again whenever Redis answers NOSCRIPT (after a
/// restart or SCRIPT FLUSH). The source stays in Swift, so there is nothing to deploy beside the binary.
public final class RedisScript: Sendable {
    public let name: String
    public let source: String
    private let sha = Mutex<String?>(nil)

    public init(name: String, source: String) {
        self.name = name
        self.source = source
    }

    fileprivate var cachedSHA: String? { sha.withLock { $0 } }

    fileprivate func remember(_ value: String) { sha.withLock { $0 = value } }
}

/// One invocation of a script.
public struct ScriptCall: Sendable, Hashable {
    public var keys: [String]
    public var arguments: [String]

    public init(keys: [String], arguments: [String]) {
        self.keys = keys
        self.arguments = arguments
    }
}

extension RedisConnection {
    /// Runs the script once per call, all calls in one pipeline; returns one reply per call.
    public func evaluate(_ script: RedisScript, _ calls: [ScriptCall]) async throws -> [RedisReply] {
        guard !calls.isEmpty else { return [] }
        var sha = script.cachedSHA
        if sha == nil { sha = try await load(script) }
        var replies = try await send(calls.map { Self.evalsha(sha!, $0) })
        let missing = replies.indices.filter { replies[$0].errorMessage?.hasPrefix("NOSCRIPT") == true }
        if !missing.isEmpty {
            let reloaded = try await load(script)
            let retried = try await send(missing.map { Self.evalsha(reloaded, calls[$0]) })
            for (index, reply) in zip(missing, retried) { replies[index] = reply }
        }
        return replies
    }

    private func load(_ script: RedisScript) async throws -> String {
        let reply = try await send(RedisCommand("SCRIPT", ["LOAD", script.source]))
        guard let sha = reply.string, reply.errorMessage == nil else {
            throw RedisError(.commandFailed, reply.errorMessage ?? "SCRIPT LOAD returned no sha", command: "SCRIPT LOAD \(script.name)")
        }
        script.remember(sha)
        return sha
    }

    private static func evalsha(_ sha: String, _ call: ScriptCall) -> RedisCommand {
        var command = RedisCommand("EVALSHA", [sha, String(call.keys.count)])
        for key in call.keys { command.append(key) }
        for argument in call.arguments { command.append(argument) }
        return command
    }
}
