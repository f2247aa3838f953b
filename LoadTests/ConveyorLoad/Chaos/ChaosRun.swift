import AsyncHTTPClient
import ConveyorCore
import Foundation
import Synchronization

/// What to run: how much load, over how long, against how many agents.
struct ChaosPlan: Sendable {
    var tasks: Int
    var duration: Duration
    var agents: Int
    var agentKillEvery: Duration
    var settle: Duration
}

/// One fault as it happened.
struct FaultRecord: Sendable {
    enum Kind: String, Sendable {
        case agentKilled = "agent SIGKILL"
        case agentCrashed = "agent crashed at crash-before-complete"
        case coordinatorCrashed = "coordinator crashed at a fault point"
        case coordinatorKilled = "coordinator SIGKILL"
        case redisKilled = "Redis SIGKILL, restarted from its AOF"
        case postgresRestarted = "PostgreSQL restarted (immediate stop)"
    }

    var kind: Kind
    var atMillis: Int64
    var detail: String
    /// For agent faults: the agent that died.
    var agent: String?
}

/// Drives one chaos run: starts the cluster, submits the load, injects the faults, restarts whatever
/// died, waits for every accepted task to finish, and reports.
final class ChaosRun: Sendable {
    let plan: ChaosPlan
    let conveyor: String
    private let faults = Mutex<[FaultRecord]>([])
    private let finished = Atomic<Bool>(false)

    /// CONVEYOR_FAULT of each coordinator generation: the first three die at the narrow windows.
    /// (Recorder batches are fewer than submission batches, hence its higher chance per pass.)
    static let coordinatorFaults = ["crash-after-commit:0.05", "crash-after-dispatch:0.1", "crash-after-record:0.3"]
    static let agentFault = "crash-before-complete:0.005"

    init(plan: ChaosPlan, conveyor: String) {
        self.plan = plan
        self.conveyor = conveyor
    }

    func execute(keep: Bool) async throws -> ChaosReport {
        let cluster = try await ChaosCluster.start(conveyor: conveyor)
        do {
            let report = try await drive(cluster)
            await cluster.shutdown(keep: keep)
            return report
        } catch {
            await cluster.shutdown(keep: true)
            throw ChaosError("\(error) (logs kept in \(cluster.directory))")
        }
    }

    private func record(_ kind: FaultRecord.Kind, _ detail: String, agent: String? = nil) {
        let fault = FaultRecord(kind: kind, atMillis: WallClock.nowMillis(), detail: detail, agent: agent)
        faults.withLock { $0.append(fault) }
        print("[chaos] \(kind.rawValue): \(detail)")
    }

    private func drive(_ cluster: ChaosCluster) async throws -> ChaosReport {
        try cluster.startCoordinator(generation: 0, fault: Self.coordinatorFaults[0])
        for slot in 0..<plan.agents { try cluster.startAgent(id: "agent-\(slot)-g0", fault: Self.agentFault) }
        try await waitUntilReady(cluster)

        let load = ChaosLoad(total: plan.tasks, duration: plan.duration, baseURL: cluster.baseURL)
        let start = ContinuousClock.now
        let startMillis = WallClock.nowMillis()
        print("[chaos] submitting \(plan.tasks) tasks over \(plan.duration) to \(plan.agents) agents; folder \(cluster.directory)")
        let supervisor = Task { await supervise(cluster, start: start) }
        await load.run(startedAt: start)
        let loadEnded = ContinuousClock.now
        print("[chaos] load done: \(load.accepted.count) accepted in \(loadEnded - start); waiting for every task to finish")
        let settled = try await waitUntilFinished(cluster, ids: load.accepted.map(\.id))
        finished.store(true, ordering: .relaxed)
        await supervisor.value
        return try await ChaosReport.make(
            plan: plan, cluster: cluster, load: load, faults: faults.withLock { $0 }, startMillis: startMillis,
            settledAfter: settled, allRecorded: ContinuousClock.now - start)
    }

    private func waitUntilReady(_ cluster: ChaosCluster) async throws {
        for _ in 0..<600 {
            var request = HTTPClientRequest(url: cluster.baseURL + "/ready")
            request.method = .GET
            if let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(2)), response.status.code == 200 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ChaosError("the coordinator did not become ready within 60 s")
    }

    /// Polls PostgreSQL until every accepted id is terminal; returns how long that took after the load.
    private func waitUntilFinished(_ cluster: ChaosCluster, ids: [Int64]) async throws -> Duration {
        let began = ContinuousClock.now
        let deadline = began + plan.settle
        var last = ""
        while ContinuousClock.now < deadline {
            if let counts = try? await TaskCensus.statusCounts(url: cluster.postgres.url, ids: ids) {
                let terminal = counts.filter { TaskStatus(rawValue: $0.key)?.isTerminal == true }.values.reduce(0, +)
                let line = counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
                if line != last {
                    print("[chaos] \(terminal)/\(ids.count) terminal: \(line)")
                    last = line
                }
                if terminal == ids.count { return ContinuousClock.now - began }
            }
            try await Task.sleep(for: .seconds(1))
        }
        return ContinuousClock.now - began
    }

    /// Injects the scheduled faults and restarts whatever died, until the run is over.
    private func supervise(_ cluster: ChaosCluster, start: ContinuousClock.Instant) async {
        let duration = plan.duration
        var generations = [Int](repeating: 0, count: plan.agents)
        var killedByUs = Set<String>()
        var nextAgentKill = start + .seconds(1)
        var killSlot = 0
        var coordinatorKilled = false
        var redisKilled = false
        var postgresRestarted = false
        var background: [Task<Void, Never>] = []
        var coordinatorDownSince: ContinuousClock.Instant?
        var armed: [Int: String] = [0: Self.coordinatorFaults[0]]

        while !finished.load(ordering: .relaxed) {
            let now = ContinuousClock.now
            let inWindow = now < start + duration

            // The coordinator: restart whatever generation died, the next one armed with the next fault.
            if cluster.coordinatorGeneration == nil {
                if coordinatorDownSince == nil {
                    // Not killed by us: it crashed at its armed fault point.
                    coordinatorDownSince = now
                    let generation = cluster.lastCoordinatorGeneration
                    record(.coordinatorCrashed, "generation \(generation) died (armed: \(armed[generation] ?? "nothing"))")
                } else if now - coordinatorDownSince! >= .milliseconds(300) {
                    let generation = cluster.lastCoordinatorGeneration + 1
                    let fault = inWindow && generation < Self.coordinatorFaults.count ? Self.coordinatorFaults[generation] : nil
                    try? cluster.startCoordinator(generation: generation, fault: fault)
                    armed[generation] = fault
                    coordinatorDownSince = nil
                }
            }

            // Agents: replace each dead one under a new id (so its tasks must be reclaimed by lease).
            for id in cluster.exitedAgents {
                cluster.forgetAgent(id)
                if !killedByUs.contains(id) { record(.agentCrashed, id, agent: id) }
                guard let slot = Int(id.split(separator: "-")[1]) else { continue }
                generations[slot] += 1
                try? cluster.startAgent(id: "agent-\(slot)-g\(generations[slot])", fault: nil)
            }

            if inWindow && now >= nextAgentKill {
                let running = cluster.runningAgents
                if !running.isEmpty {
                    let victim = running[killSlot % running.count]
                    killSlot += 1
                    killedByUs.insert(victim)
                    record(.agentKilled, victim, agent: victim)
                    cluster.killAgent(victim)
                }
                nextAgentKill = now + plan.agentKillEvery
            }

            if !redisKilled && now >= start + duration * 0.3 {
                redisKilled = true
                record(.redisKilled, "down for 1 s")
                cluster.killRedis()
                background.append(Task {
                    try? await Task.sleep(for: .seconds(1))
                    do { try await cluster.restartRedis() } catch { print("[chaos] Redis did not restart: \(error)") }
                })
            }

            if !coordinatorKilled && now >= start + duration * 0.5 {
                coordinatorKilled = true
                if cluster.coordinatorGeneration != nil {
                    record(.coordinatorKilled, "generation \(cluster.lastCoordinatorGeneration)")
                    cluster.killCoordinator()
                    coordinatorDownSince = now
                }
            }

            if !postgresRestarted && now >= start + duration * 0.7 {
                postgresRestarted = true
                record(.postgresRestarted, "down for 1 s")
                background.append(Task {
                    do { try await cluster.restartPostgres(pause: .seconds(1)) } catch { print("[chaos] PostgreSQL did not restart: \(error)") }
                })
            }

            try? await Task.sleep(for: .milliseconds(100))
        }
        for task in background { await task.value }
    }
}
