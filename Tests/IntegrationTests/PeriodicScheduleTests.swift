import ConveyorCoordinator
import ConveyorCore
import ConveyorPostgres
import ConveyorTesting
import Testing

@Suite("Periodic schedules")
struct PeriodicScheduleTests {
    private let registry = TaskTypeRegistry(
        [TaskTypeDefinition(name: "noop", maxConcurrent: 100, handler: "noop")],
        schedules: [ScheduleDefinition(name: "every-second", cron: try! CronSchedule("* * * * * *"), type: "noop", params: #"{"from":"schedule"}"#)])

    /// The ticks (Unix ms) the schedule's tasks were created for, from their idempotency keys.
    private func ticks(on stack: Stack) async throws -> [Int64] {
        try await stack.coordinator.postgres.withSession { session in
            try session.query("SELECT idempotency_key FROM tasks WHERE idempotency_key LIKE 'schedule:every-second:%'").rows
                .compactMap { $0[0].flatMap { Int64($0.split(separator: ":").last ?? "") } }
        }
    }

    @Test("two coordinators and a restart of one: every tick is enqueued exactly once, none missed, none doubled")
    func twoCoordinatorsAndARestart() async throws {
        let first = try await Stack.start(registry: registry)
        let second = try await Stack.start(registry: registry, agents: 0, environment: first.environment)
        try await Task.sleep(for: .seconds(4))
        try await second.stop()
        try await Task.sleep(for: .seconds(2))
        let restarted = try await Stack.start(registry: registry, agents: 0, environment: first.environment)
        try await Task.sleep(for: .seconds(3))
        try await restarted.stop()
        // The first also restarts: the others' last tick in PostgreSQL is where it carries on.
        let environment = first.environment
        try await first.stop()
        try await Task.sleep(for: .seconds(2))
        let last = try await Stack.start(registry: registry, environment: environment)
        try await Task.sleep(for: .seconds(2))
        let ticks = try await ticks(on: last).sorted()
        #expect(ticks.count >= 8, "\(ticks.count) ticks")
        #expect(Set(ticks).count == ticks.count, "no tick twice")
        let gaps = zip(ticks, ticks.dropFirst()).map { $1 - $0 }
        #expect(gaps.allSatisfy { $0 == 1000 }, "consecutive seconds, none missed across the 2 s outage (latest-policy catch-up within the late window): \(gaps)")
        let statuses = try await last.waitUntilTerminal(try await last.coordinator.postgres.withSession { session in
            try session.query("SELECT id FROM tasks WHERE idempotency_key LIKE 'schedule:%'").rows.compactMap { $0[0].flatMap { Int64($0) } }
        })
        #expect(statuses.values.allSatisfy { $0 == .succeeded })
        let listed = try await last.get("/v1/schedules")
        #expect(listed.status == 200)
        let entry = listed.json?["schedules"]?.arrayValue?.first
        #expect(entry?["name"]?.stringValue == "every-second" && entry?["cron"]?.stringValue == "* * * * * *")
        #expect(entry?["last_tick"]?.stringValue != nil && entry?["next_tick"]?.stringValue != nil && entry?["type"]?.stringValue == "noop")
        try await last.stop()
    }
}
