@testable import ConveyorCoordinator
import ConveyorCore
import ConveyorRedis
import Testing

@Suite("Submitter: what a flush works out once per batch")
struct SubmitterBatchTests {
    @Test("ready stream names are the keys' own, for runs of one queue and for queues and priorities that alternate")
    func readyStreamNames() {
        let keys = RedisKeys()
        var names = ReadyStreamNames(keys: keys)
        let tasks: [(String, TaskPriority)] = [
            ("default", .normal), ("default", .normal), ("bulk", .normal), ("default", .high), ("default", .normal), ("bulk", .low), ("bulk", .low),
        ]
        for (queue, priority) in tasks {
            #expect(names.name(queue, priority: priority) == keys.ready(queue, priority: priority))
        }
    }

    @Test("tasks are counted by type, the types in the order they first appear")
    func countsByType() {
        let counts = Submitter.countByType(["noop", "noop", "echo", "noop", "sleep", "echo", "echo"])
        #expect(counts.map(\.type) == ["noop", "echo", "sleep"])
        #expect(counts.map(\.count) == [3, 3, 1])
        #expect(Submitter.countByType([String]()).isEmpty)
    }
}
