import ConveyorCore
import ConveyorPostgres
import ConveyorTesting
import Testing

@Suite("Task id allocation")
struct TaskIDAllocatorTests {
    @Test("concurrent callers on separate sessions get distinct ids, even when a block runs out between their checks")
    func concurrentCallersGetDistinctIDs() async throws {
        let environment = try await TestServers.shared.environment(name: "ids")
        let postgres = PostgresClient(configuration: environment.postgres, logger: TestServers.quietLogger)
        defer { postgres.close() }
        try await Migrator.migrate(postgres)
        let allocator = TaskIDAllocator()
        // Sizes that straddle block boundaries, on more sessions than the pool has connections.
        let sizes = (0..<64).map { [1, 7, 333, 999, 1000, 1001, 2500][$0 % 7] }
        let batches = try await withThrowingTaskGroup(of: [TaskID].self) { group in
            for size in sizes {
                group.addTask { try await postgres.withSession { session in try allocator.allocate(size, on: session) } }
            }
            var all: [[TaskID]] = []
            for try await batch in group { all.append(batch) }
            return all
        }
        #expect(batches.map(\.count).sorted() == sizes.sorted())
        let ids = batches.flatMap { $0 }
        #expect(Set(ids).count == ids.count, "every id handed out once")
    }
}
