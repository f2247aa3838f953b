import ConveyorCore
import ConveyorPostgres
import ConveyorRedis

/// Pausing and resuming a queue or a type. PostgreSQL holds the record (``PauseStore``), written first;
/// Redis holds the copy agents read (`conveyor:{q}:paused`), restored from the record by the Reconciler
/// when Redis lost its data. So a pause survives the restart of every process.
///
/// A pause stops new starts, never a running attempt: agents stop reading a paused queue, and park the
/// entries of a paused type they take (``Scripts/admit``). Resume clears the pause and moves what was
/// parked back to the ready streams in the order it was parked (``Scripts/resume``).
struct QueuePauses: Sendable {
    let store: PauseStore
    let redis: any RedisClient
    let keys: RedisKeys
    let registry: TaskTypeRegistry

    /// What a pause or resume names: a whole queue, or one type (in its queue).
    struct Target: Sendable, Hashable {
        var queue: String
        var type: String?

        var field: String { type ?? "*" }
    }

    func pause(_ target: Target, by: String?) async throws -> PauseStore.Pause {
        let pause = try await store.pause(queue: target.queue, type: target.type, by: by)
        _ = try await redis.send(RedisCommand("HSET", [keys.paused(target.queue), target.field, String(pause.pausedAtMillis)]))
        return pause
    }

    /// Returns whether it was paused, and how many parked entries went back to the ready streams.
    func resume(_ target: Target) async throws -> (wasPaused: Bool, requeued: Int) {
        let wasPaused = try await store.resume(queue: target.queue, type: target.type)
        let types = target.type.map { [$0] } ?? registry.types.values.filter { $0.queue == target.queue }.map(\.name).sorted()
        let call = ScriptCall(
            keys: [keys.paused(target.queue)] + TaskPriority.allCases.map { keys.ready(target.queue, priority: $0) }
                + types.map { keys.pausedEntries(target.queue, type: $0) },
            arguments: [target.field] + types)
        let reply = try await redis.evaluate(Scripts.resume, [call])[0]
        if let message = reply.errorMessage { throw RedisError(.commandFailed, message, command: "EVALSHA resume") }
        return (wasPaused, Int(reply.integer ?? 0))
    }

    /// Writes every recorded pause into Redis again (after Redis lost its data), then drops any that a
    /// resume removed from the record meanwhile.
    func restore() async throws -> Int {
        let pauses = try await store.all()
        guard !pauses.isEmpty else { return 0 }
        _ = try await redis.send(pauses.map { pause in
            RedisCommand("HSET", [keys.paused(pause.queue), pause.type ?? "*", String(pause.pausedAtMillis)])
        })
        let still = Set(try await store.all().map { Target(queue: $0.queue, type: $0.type) })
        let gone = pauses.map { Target(queue: $0.queue, type: $0.type) }.filter { !still.contains($0) }
        for target in gone { _ = try await resume(target) }
        return pauses.count - gone.count
    }
}
