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

extension RedisClient {
    /// Runs the script once per call, all calls in one pipeline; returns one reply per call.
    public func evaluate(_ script: RedisScript, _ calls: [ScriptCall]) async throws -> [RedisReply] {
        try await evaluate(calls.map { (script, $0) })
    }

    /// Runs several scripts' calls in one pipeline, in order; returns one reply per call.
    public func evaluate(_ calls: [(script: RedisScript, call: ScriptCall)]) async throws -> [RedisReply] {
        guard !calls.isEmpty else { return [] }
        var shas: [String: String] = [:]
        for (script, _) in calls where shas[script.name] == nil {
            if let cached = script.cachedSHA { shas[script.name] = cached } else { shas[script.name] = try await load(script) }
        }
        var replies = try await send(calls.map { Self.evalsha(shas[$0.script.name]!, $0.call) })
        let missing = replies.indices.filter { replies[$0].errorMessage?.hasPrefix("NOSCRIPT") == true }
        if !missing.isEmpty {
            var reloaded: [String: String] = [:]
            for index in missing where reloaded[calls[index].script.name] == nil {
                reloaded[calls[index].script.name] = try await load(calls[index].script)
            }
            let retried = try await send(missing.map { Self.evalsha(reloaded[calls[$0].script.name]!, calls[$0].call) })
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
