@testable import ConveyorAgent
import ConveyorCore
import ConveyorRedis
import Logging
import Testing

@Suite("FlowGate: what the release of finished attempts asks Redis")
struct FlowGateTests {
    private let registry = TaskTypeRegistry([
        TaskTypeDefinition(name: "llm", maxConcurrent: 4, perKey: KeyLimits(maxConcurrent: 1), handler: "noop"),
        TaskTypeDefinition(name: "free", maxConcurrent: nil, handler: "noop"),
    ])

    private func gate() -> FlowGate {
        // Never connects: releaseCalls only builds arguments.
        let redis = RedisConnection(configuration: RedisConfiguration(port: 1), logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        return FlowGate(redis: redis, keys: RedisKeys(prefix: "p"), registry: registry)
    }

    private func delivery(_ id: Int64, type: String = "llm", key: String? = nil, priority: TaskPriority = .normal) -> Delivery {
        let keys = RedisKeys(prefix: "p")
        return Delivery(queue: "default", stream: keys.ready("default", priority: priority), entryID: "\(id)-0", envelope: TaskEnvelope(
            id: TaskID(rawValue: id), type: type, params: "{}", correlationID: "c", attempt: 1, maxAttempts: 3, enqueuedAtMillis: 1,
            priority: priority, limitKey: key))
    }

    @Test("one call per queue frees each slot with the entry's own stream and id; a per-key limit names its reaper list")
    func releaseArguments() throws {
        let calls = gate().releaseCalls([(delivery(1, key: "acme", priority: .high), false), (delivery(2), true)], consumer: "agent-1")
        try #require(calls.count == 1)
        let call = calls[0]
        #expect(Array(call.keys.prefix(3)) == ["p:{default}:ready:low", "p:{default}:ready", "p:{default}:ready:high"])
        #expect(call.keys[3] == "p:{default}:limit:llm:running" && call.keys[4] == "p:{default}:limit:llm:waiting")
        #expect(call.keys[5] == "p:{default}:limit:llm:key:acme:running" && call.keys[6] == "p:{default}:limit:llm:key:acme:waiting")
        #expect(call.keys[7] == "p:{default}:limit:llm:waiting-keys")
        #expect(call.arguments == [
            "agents", "agent-1",
            // The type's limit: filled up to 4 (task 2 was a cancelled entry), no reaper list, two releases.
            "4", "0", "", "2", "1", "3", "1-0", "2", "2", "2-0",
            // Task 1's key: only what was freed, its reaper list at KEYS[8].
            "0", "8", "acme", "1", "1", "3", "1-0",
        ])
    }

    @Test("attempts of unlimited types release nothing")
    func unlimitedReleaseNothing() {
        #expect(gate().releaseCalls([(delivery(3, type: "free"), false)], consumer: "a").isEmpty)
    }
}
