@testable import ConveyorCoordinator
import ConveyorCore
import Testing

@Suite("Scheduler: which ticks a pass enqueues (no I/O)")
struct SchedulerPolicyTests {
    /// 2026-11-30T12:00:00Z.
    private let noon: Int64 = 1_796_040_000_000
    private let minute: Int64 = 60_000

    private func schedule(_ missed: ScheduleDefinition.MissedTicks, cron: String = "* * * * *") throws -> ScheduleDefinition {
        ScheduleDefinition(name: "s", cron: try CronSchedule(cron), type: "noop", missedTicks: missed)
    }

    @Test("while running, every tick since the last one is enqueued, whatever the policy")
    func runningNormally() throws {
        for policy in ScheduleDefinition.MissedTicks.allCases {
            let ticks = Scheduler.dueTicks(try schedule(policy), last: noon - minute, now: noon + 500)
            #expect(ticks == [noon], "\(policy)")
        }
        #expect(Scheduler.dueTicks(try schedule(.latest), last: noon, now: noon + 500).isEmpty, "a tick is never enqueued twice")
    }

    @Test("a late pass (a pause under a minute) still enqueues each tick it passed")
    func latePass() throws {
        let cron = "*/10 * * * * *"
        let ticks = Scheduler.dueTicks(try schedule(.skip, cron: cron), last: noon, now: noon + 35_000)
        #expect(ticks == [noon + 10_000, noon + 20_000, noon + 30_000])
    }

    @Test("after an outage, `latest` enqueues the newest missed tick once; `skip` none; `all` every one, oldest first")
    func afterOutage() throws {
        let last = noon - 3 * 60 * minute  // down for three hours, hourly schedule
        let hourly = "0 * * * *"
        let now = noon + 5 * minute
        #expect(Scheduler.dueTicks(try schedule(.latest, cron: hourly), last: last, now: now) == [noon])
        #expect(Scheduler.dueTicks(try schedule(.skip, cron: hourly), last: last, now: now).isEmpty)
        #expect(Scheduler.dueTicks(try schedule(.all, cron: hourly), last: last, now: now) == [noon - 120 * minute, noon - 60 * minute, noon])
    }

    @Test("`all` catches up at most 100 ticks a pass")
    func catchUpIsBounded() throws {
        let ticks = Scheduler.dueTicks(try schedule(.all), last: noon - 1000 * minute, now: noon)
        #expect(ticks.count == ScheduleDefinition.maxCatchUp)
        #expect(ticks.first == noon - 999 * minute)
    }

    @Test("a recent tick makes `latest` skip older missed ones: one catch-up run, not two")
    func latestPrefersRecent() throws {
        let ticks = Scheduler.dueTicks(try schedule(.latest), last: noon - 10 * minute, now: noon + 30_000)
        #expect(ticks == [noon])
    }
}
