import ConveyorCore
import ConveyorPostgres
import Testing

@Suite("Task search plan")
struct TaskSearchPlanTests {
    private func filter(_ build: (inout TaskFilter) -> Void) -> TaskFilter {
        var filter = TaskFilter()
        build(&filter)
        return filter
    }

    @Test("the most selective indexed filter drives the search")
    func driverChoice() {
        #expect(TaskSearchPlan(filter: TaskFilter(), limit: 50).driver == .primaryKey)
        #expect(TaskSearchPlan(filter: filter { $0.idempotencyKey = "k"; $0.correlationID = "c" }, limit: 50).driver == .idempotencyKey)
        #expect(TaskSearchPlan(filter: filter { $0.correlationID = "c"; $0.tags = [TaskTag(key: "a", value: "b")] }, limit: 50).driver == .correlationID)
        #expect(TaskSearchPlan(filter: filter { $0.tags = [TaskTag(key: "a", value: "b")]; $0.statuses = [.failed] }, limit: 50).driver == .tag)
        #expect(TaskSearchPlan(filter: filter { $0.statuses = [.failed, .dead]; $0.type = "t" }, limit: 50).driver == .statuses([.dead, .failed]))
        // `queued` is not in task_attention: the primary key drives, the status is checked on the rows.
        #expect(TaskSearchPlan(filter: filter { $0.statuses = [.failed, .queued]; $0.type = "t" }, limit: 50).driver == .primaryKey)
        #expect(TaskSearchPlan(filter: filter { $0.type = "t"; $0.queue = "q" }, limit: 50).driver == .primaryKey)
        #expect(TaskSearchPlan(filter: filter { $0.statuses = [.succeeded] }, limit: 50).driver == .primaryKey)
    }

    @Test("a branch yields limit + 1 ids when the driver checks every filter, the budget otherwise")
    func branchLimits() {
        #expect(TaskSearchPlan(filter: TaskFilter(), limit: 50).branchLimit == 51)
        #expect(TaskSearchPlan(filter: filter { $0.type = "t" }, limit: 50).branchLimit == TaskSearchPlan.candidateBudget)
        #expect(TaskSearchPlan(filter: filter { $0.statuses = [.failed] }, limit: 50).branchLimit == 51)
        #expect(TaskSearchPlan(filter: filter { $0.statuses = [.failed, .dead]; $0.errorContains = "x" }, limit: 50).branchLimit == TaskSearchPlan.candidateBudget / 2)
        #expect(TaskSearchPlan(filter: filter { $0.createdAfter = 1 }, limit: 50).hasResidualFilter)
        #expect(TaskSearchPlan(filter: filter { $0.tags = [TaskTag(key: "a", value: "b"), TaskTag(key: "c", value: "d")] }, limit: 50).hasResidualFilter)
    }

    @Test("the horizon is the highest last id among the branches that were cut")
    func horizon() {
        let plan = TaskSearchPlan(filter: filter { $0.statuses = [.failed, .dead] }, limit: 2)
        #expect(plan.branchLimit == 3)
        let full = [("failed", 90), ("failed", 80), ("failed", 70), ("dead", 95), ("dead", 60), ("dead", 50)]
        #expect(plan.horizon(of: full.map { (branch: $0.0, id: TaskID(Int64($0.1))) }) == TaskID(70))
        let short = [("failed", 90), ("dead", 95), ("dead", 60)]
        #expect(plan.horizon(of: short.map { (branch: $0.0, id: TaskID(Int64($0.1))) }) == nil)
    }

    @Test("error text is matched literally: LIKE's wildcards are escaped")
    func errorTextEscaping() {
        let plan = TaskSearchPlan(filter: filter { $0.errorContains = #"100% _done\"# }, limit: 10)
        let (sql, parameters) = plan.rowsQuery(ids: [TaskID(1)])
        #expect(sql.contains("error ILIKE"))
        #expect(parameters.last == #"100\% \_done\\"#)
    }

    @Test("time bounds ask for an upper id only when a before-time is given, a lower id only for created_after")
    func idBounds() {
        let plan = TaskSearchPlan(filter: filter { $0.finishedBefore = 2_000; $0.createdBefore = 5_000 }, limit: 10)
        #expect(plan.needsIDBounds)
        let (_, parameters) = plan.idBoundsQuery()
        #expect(parameters[0] == PostgresTimestamp.text(millis: 2_001) && parameters[1] == nil)
        #expect(!TaskSearchPlan(filter: filter { $0.finishedAfter = 1 }, limit: 10).needsIDBounds)
    }
}
