import ArgumentParser
import Foundation

/// `conveyor-load chaos`: submits a task mix to a real cluster while killing its parts, then proves that
/// every task that got a 201 finished with the right status.
struct ChaosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos",
        abstract: "Submit tasks while agents, the coordinator, Redis and PostgreSQL are killed; report lost and duplicated work.",
        discussion: """
            Starts its own redis-server (AOF, everysec) and PostgreSQL, one coordinator and several agents as
            separate `conveyor` processes, and submits a mix of noop, delayed noop, remote (the HTTP push
            handler, to a worker it runs), sleep, steps and fail-once tasks (every tenth with a completion
            webhook to a receiver it runs), while a schedule ticks every second, through
            /v1/tasks/batch (each task with an idempotency key; a failed request is retried until it gets
            its answer). Meanwhile: an agent is SIGKILLed every few seconds and restarted under a new id;
            the first coordinators crash at CONVEYOR_FAULT points (after COMMIT, after XADD, after recording)
            and one more is SIGKILLed; Redis is SIGKILLed and restarted from its AOF; PostgreSQL is
            restarted (immediate stop). Exits 1 if any accepted task is lost or ends with a wrong status, or
            a task with a callback never got a validly signed delivery, or a schedule tick was missed or doubled.
            """)

    @Option(help: "Tasks to submit.")
    var tasks = 20_000

    @Option(help: "Seconds over which the tasks are submitted (the faults happen in this window).")
    var duration = 40

    @Option(help: "Agent processes.")
    var agents = 3

    @Option(help: "Seconds between agent kills.")
    var agentKillEvery = 3.0

    @Option(help: "Seconds to wait, after the load, for every accepted task to finish.")
    var settle = 240

    @Option(help: "The conveyor binary (default: next to this one).")
    var conveyor: String?

    @Option(help: "Write the report as JSON to this file as well.")
    var reportJSON: String?

    @Flag(help: "Keep the run's folder (logs, journal, data) instead of removing it.")
    var keep = false

    @Option(help: "Run on a Redis Cluster of this many primaries (a replica each): the Redis faults then hit the shard serving one queue (its primary killed, frozen past the node timeout, the whole shard wiped).")
    var redisCluster: Int?

    func validate() throws {
        guard tasks >= 100 else { throw ValidationError("--tasks must be at least 100") }
        guard duration >= 10 else { throw ValidationError("--duration must be at least 10 seconds") }
        guard agents >= 2 else { throw ValidationError("--agents must be at least 2 (one is always being killed)") }
        guard agentKillEvery >= 0.5 else { throw ValidationError("--agent-kill-every must be at least 0.5") }
        if let redisCluster, !(3...9).contains(redisCluster) { throw ValidationError("--redis-cluster must be 3–9 primaries (a Redis Cluster needs at least 3)") }
    }

    func run() async throws {
        let binary = conveyor ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("conveyor").path
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw ValidationError("no conveyor binary at \(binary): build it (swift build --product conveyor) or pass --conveyor")
        }
        let plan = ChaosPlan(
            tasks: tasks, duration: .seconds(duration), agents: agents, agentKillEvery: .milliseconds(Int64(agentKillEvery * 1000)),
            settle: .seconds(settle), redisCluster: redisCluster)
        let run = ChaosRun(plan: plan, conveyor: binary)
        let report = try await run.execute(keep: keep)
        print(report.text)
        if let reportJSON {
            try report.json.write(toFile: reportJSON, atomically: true, encoding: .utf8)
        }
        if !report.passed { throw ExitCode(1) }
    }
}
