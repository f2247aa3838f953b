import ConveyorCore
import ConveyorRedis

/// A ready-stream entry that must never run again: undecodable, or delivered more often than its
/// `max_attempts` without finishing. The Consumer and the Reclaimer both dead-letter through here, with
/// the one atomic ``Scripts/deadLetter`` script: copy to the dead stream (and its index), record the
/// `dead` event when the task is known, acknowledge and delete, only if the entry is still pending.
struct PoisonEntry: Sendable {
    var queue: String
    /// The ready stream (of its priority) the entry is pending in.
    var stream: String
    var entryID: String
    var fields: [String: String]
    var reason: String
    /// Nil when the entry could not be decoded (no task to record an event for).
    var envelope: TaskEnvelope?

    /// The script call that dead-letters this entry.
    func scriptCall(keys: RedisKeys, agentID: String, atMillis: Int64 = WallClock.nowMillis()) -> ScriptCall {
        var deadFields = fields.sorted { $0.key < $1.key }.flatMap { [$0.key, $0.value] }
        deadFields += ["dead_reason", reason, "dead_entry", entryID, "dead_at", String(atMillis)]
        var eventFields: [String] = []
        if let envelope {
            var event = LifecycleEvent(
                taskID: envelope.id, status: .dead, attempt: envelope.attempt, agent: agentID, atMillis: atMillis,
                error: reason, correlationID: envelope.correlationID, type: envelope.type)
            event.hasCallback = envelope.hasCallback
            eventFields = event.fields.flatMap { [$0.0, $0.1] }
        }
        let arguments = [RedisKeys.agentsGroup, entryID, envelope?.id.description ?? "", String(deadFields.count)] + deadFields
            + [String(eventFields.count)] + eventFields
        return ScriptCall(keys: [stream, keys.events(queue), keys.dead(queue), keys.deadIndex(queue)], arguments: arguments)
    }

    /// Dead-letters every entry in one pipeline; returns those this call dead-lettered (an entry another
    /// agent handled first is left out).
    static func deadLetter(_ entries: [PoisonEntry], redis: any RedisClient, keys: RedisKeys, agentID: String) async throws -> [PoisonEntry] {
        guard !entries.isEmpty else { return [] }
        let replies = try await redis.evaluate(Scripts.deadLetter, entries.map { $0.scriptCall(keys: keys, agentID: agentID) })
        return zip(entries, replies).filter { $0.1.integer == 1 }.map(\.0)
    }
}
