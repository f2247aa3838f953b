import AsyncHTTPClient
import ConveyorCore
import Foundation
import NIOCore
import Synchronization

/// What to run: how much load, over how long, against how many agents.
struct ChaosPlan: Sendable {
    var tasks: Int
    var duration: Duration
    var agents: Int
    var agentKillEvery: Duration
    var settle: Duration
    /// Primaries of the Redis Cluster to run on; nil for one Redis.
    var redisCluster: Int? = nil
}

/// One fault as it happened.
struct FaultRecord: Sendable {
    enum Kind: String, Sendable {
        case agentKilled = "agent SIGKILL"
        case agentCrashed = "agent crashed at crash-before-complete"
        case coordinatorCrashed = "coordinator crashed at a fault point"
        case coordinatorKilled = "coordinator SIGKILL"
        case redisKilled = "Redis SIGKILL, restarted from its AOF"
        case redisWiped = "Redis SIGKILL, restarted without its data"
        case postgresRestarted = "PostgreSQL restarted (immediate stop)"
        case redisFrozen = "Redis frozen (SIGSTOP, then SIGCONT)"
        case postgresFrozen = "PostgreSQL frozen (SIGSTOP to every process, then SIGCONT)"
    }

    var kind: Kind
    var atMillis: Int64
    var detail: String
    /// For agent faults: the agent that died.
    var agent: String?
    /// For coordinator faults: the coordinator slot, and when it answered /ready again.
    var slot: Int?
    var recoveredAtMillis: Int64?
}

/// Drives one chaos run: starts the cluster, submits the load, injects the faults, restarts whatever
/// died, waits for every accepted task to finish, and reports.
final class ChaosRun: Sendable {
    let plan: ChaosPlan
    let conveyor: String
    private let faults = Mutex<[FaultRecord]>([])
    private let finished = Atomic<Bool>(false)
    /// True from a freeze's SIGSTOP to its SIGCONT: a kill or restart of the same server waits, since
    /// `pg_ctl stop` on a stopped postmaster hangs until its own timeout and the restart then fails.
    private let frozen = Mutex<Set<FaultRecord.Kind>>([])

    /// CONVEYOR_FAULT of each coordinator generation: the first three die at the narrow windows.
    /// (Recorder batches are fewer than submission batches, hence its higher chance per pass.)
    static let coordinatorFaults = ["crash-after-commit:0.05", "crash-after-dispatch:0.1", "crash-after-record:0.3"]
    static let agentFault = "crash-before-complete:0.005"

    init(plan: ChaosPlan, conveyor: String) {
        self.plan = plan
        self.conveyor = conveyor
    }

    func execute(keep: Bool) async throws -> ChaosReport {
        let receiver = try await WebhookReceiver.start()
        let cluster: ChaosCluster
        do {
            cluster = try await ChaosCluster.start(conveyor: conveyor, workerURL: receiver.workerURL, redisCluster: plan.redisCluster)
        } catch {
            await receiver.stop()
            throw error
        }
        do {
            let report = try await drive(cluster, receiver: receiver)
            await receiver.stop()
            await cluster.shutdown(keep: keep)
            return report
        } catch {
            await receiver.stop()
            await cluster.shutdown(keep: true)
            throw ChaosError("\(error) (logs kept in \(cluster.directory))")
        }
    }

    @discardableResult
    private func record(_ kind: FaultRecord.Kind, _ detail: String, agent: String? = nil, slot: Int? = nil) -> Int {
        let fault = FaultRecord(kind: kind, atMillis: WallClock.nowMillis(), detail: detail, agent: agent, slot: slot)
        print("[chaos] \(kind.rawValue): \(detail)")
        return faults.withLock { faults in
            faults.append(fault)
            return faults.count - 1
        }
    }

    /// Notes in fault `index` when its server answered again (the rest of its recovery is Conveyor's).
    private func noteServerBack(_ index: Int) {
        let now = WallClock.nowMillis()
        faults.withLock { faults in
            faults[index].detail += String(format: "; answering again after %.1f s", Double(now - faults[index].atMillis) / 1000)
        }
    }

    /// Freezes Redis or PostgreSQL for `length`, and records the two figures that show no wait is
    /// unbounded: how long a submission took to be refused meanwhile, and how long after SIGCONT a
    /// coordinator was ready again.
    ///
    /// The server stays frozen until the probe is answered (so the figure is the time to a refusal, not
    /// to the thaw), but never longer than `length` plus ``probeLimit``; a probe whose coordinator dies
    /// meanwhile (the chaos kills them too) ends the freeze at `length`.
    private func freeze(_ kind: FaultRecord.Kind, for length: Duration, cluster: ChaosCluster) async {
        // A coordinator that is up now: slot 0's first generations die at their fault points.
        var url = cluster.baseURLs[cluster.baseURLs.count - 1]
        for candidate in cluster.baseURLs.reversed() where await CoordinatorReadiness.isReady(candidate) {
            url = candidate
            break
        }
        let index = record(kind, "for \(length)")
        let frozenAt = ContinuousClock.now
        _ = frozen.withLock { $0.insert(kind) }
        if kind == .redisFrozen { await cluster.freezeRedis() } else { cluster.freezePostgres() }
        let probe = await Self.probeSubmission(url, since: frozenAt, timeout: length + Self.probeLimit)
        let remaining = length - (ContinuousClock.now - frozenAt)
        if remaining > .zero { try? await Task.sleep(for: remaining) }
        if kind == .redisFrozen { cluster.thawRedis() } else { cluster.thawPostgres() }
        _ = frozen.withLock { $0.remove(kind) }
        let thawedAt = ContinuousClock.now
        var ready = false
        for _ in 0..<600 where !ready {
            ready = await CoordinatorReadiness.isReady(url)
            if !ready { try? await Task.sleep(for: .milliseconds(50)) }
        }
        let back = ContinuousClock.now - thawedAt
        faults.withLock { faults in
            faults[index].detail += "; \(probe)" + (ready ? String(format: "; ready %.2f s after SIGCONT", back.seconds) : "; not ready again after SIGCONT")
            if ready { faults[index].recoveredAtMillis = WallClock.nowMillis() }
        }
    }

    /// Beyond the planned freeze, how long the probe may keep a server frozen: more than the Redis and
    /// PostgreSQL deadlines (3 s and 5 s by default), so a refusal is seen.
    static let probeLimit = Duration.seconds(8)

    /// One submission to `url`: what it got and when, counted from `since`.
    private static func probeSubmission(_ url: String, since: ContinuousClock.Instant, timeout: Duration) async -> String {
        var request = HTTPClientRequest(url: url + "/v1/tasks")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(ChaosCluster.token)")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: #"{"type":"noop"}"#))
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .milliseconds(timeout.milliseconds))
            return String(format: "a submission got %d after %.1f s", Int(response.status.code), (ContinuousClock.now - since).seconds)
        } catch {
            return String(format: "a submission failed after %.1f s (%@)", (ContinuousClock.now - since).seconds, "\(error)")
        }
    }

    private func isFrozen(_ kind: FaultRecord.Kind) -> Bool { frozen.withLock { $0.contains(kind) } }

    /// Marks fault `index` recovered once the coordinator at `url` answers /ready.
    private func watchRecovery(of index: Int, url: String) -> Task<Void, Never> {
        Task {
            for _ in 0..<1200 {
                if await CoordinatorReadiness.isReady(url) {
                    let now = WallClock.nowMillis()
                    faults.withLock { $0[index].recoveredAtMillis = now }
                    return
                }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    private func drive(_ cluster: ChaosCluster, receiver: WebhookReceiver) async throws -> ChaosReport {
        // Slot 0 crashes at the fault points; slot 1 runs clean, so the leader lock changes hands.
        try await cluster.startCoordinator(slot: 0, generation: 0, fault: Self.coordinatorFaults[0])
        for slot in 1..<ChaosCluster.coordinatorSlots { try await cluster.startCoordinator(slot: slot, generation: 0, fault: nil) }
        for slot in 0..<plan.agents { try await cluster.startAgent(id: "agent-\(slot)-g0", fault: Self.agentFault) }
        try await waitUntilReady(cluster)

        let load = ChaosLoad(total: plan.tasks, duration: plan.duration, baseURLs: cluster.baseURLs, callbackURL: receiver.url)
        let start = ContinuousClock.now
        let startMillis = WallClock.nowMillis()
        print("[chaos] submitting \(plan.tasks) tasks over \(plan.duration) to \(ChaosCluster.coordinatorSlots) coordinators and \(plan.agents) agents; folder \(cluster.directory)")
        // One workflow of six nodes per fifty tasks, beside them.
        let workflows = ChaosWorkflows(total: max(1, plan.tasks / 50), duration: plan.duration, baseURLs: cluster.baseURLs)
        // Rounds of scheduled tasks cancelled in bulk by their tag, one per thousand tasks (two at least).
        let bulk = ChaosBulk(rounds: max(2, plan.tasks / 1000), duration: plan.duration, baseURLs: cluster.baseURLs)
        // Bursts of batch requests several times what a coordinator's Submitter queue holds, one per
        // five thousand tasks (two at least): shed with 503 and Retry-After, nothing accepted lost.
        let overload = ChaosOverload(bursts: max(2, plan.tasks / 5000), duration: plan.duration, baseURLs: cluster.baseURLs)
        let supervisor = Task { await supervise(cluster, start: start) }
        async let workflowsSent: Void = workflows.run(startedAt: start)
        async let bulkDone: Void = bulk.run(startedAt: start)
        async let overloadDone: Void = overload.run(startedAt: start)
        await load.run(startedAt: start)
        await workflowsSent
        await bulkDone
        await overloadDone
        let loadEnded = ContinuousClock.now
        print("[chaos] load done: \(load.accepted.count) accepted and \(workflows.accepted.count) workflows in \(loadEnded - start); waiting for every task to finish")
        let settled = try await waitUntilFinished(
            cluster, ids: load.accepted.map(\.id) + load.twins.onlyTwinIDs + workflows.accepted.flatMap { $0.nodes.values } + bulk.accepted + overload.accepted)
        let settledAt = ContinuousClock.now
        try await waitUntilWorkflowsEnded(cluster, workflows)
        finished.store(true, ordering: .relaxed)
        await supervisor.value
        let callbacks = load.accepted.filter { $0.hasCallback }.map { $0.id }
        return try await ChaosReport.make(
            plan: plan, cluster: cluster, load: load, workflows: workflows, bulk: bulk, overload: overload, faults: faults.withLock { $0 }, startMillis: startMillis,
            settledAfter: settled, allRecorded: ContinuousClock.now - start, receiver: receiver,
            waitForWebhooks: {
                _ = await self.waitForWebhooks(receiver, ids: callbacks)
                return ContinuousClock.now - settledAt
            })
    }

    private func waitUntilReady(_ cluster: ChaosCluster) async throws {
        for url in cluster.baseURLs {
            var ready = false
            for _ in 0..<600 where !ready {
                ready = await CoordinatorReadiness.isReady(url)
                if !ready { try await Task.sleep(for: .milliseconds(100)) }
            }
            guard ready else { throw ChaosError("the coordinator at \(url) did not become ready within 60 s") }
        }
    }

    /// Waits (at most 2 minutes) until the receiver got a valid delivery for every task with a callback;
    /// returns how long that took after the tasks settled.
    private func waitForWebhooks(_ receiver: WebhookReceiver, ids: [Int64]) async -> Duration {
        let began = ContinuousClock.now
        while ContinuousClock.now < began + .seconds(120) {
            let delivered = receiver.delivered
            if ids.allSatisfy({ delivered[$0] != nil }) { break }
            try? await Task.sleep(for: .milliseconds(500))
        }
        return ContinuousClock.now - began
    }

    /// Polls PostgreSQL (at most a minute) until no accepted workflow is running: its last node's end
    /// ends it, or the WorkflowSweeper's next pass does.
    private func waitUntilWorkflowsEnded(_ cluster: ChaosCluster, _ workflows: ChaosWorkflows) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let running = try? await workflows.running(url: cluster.postgres.url), running == 0 { return }
            try await Task.sleep(for: .seconds(1))
        }
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
        // Said now: the report reads the rows later, when the cluster's retention (90 s) may have dropped
        // those of tasks that did finish, and would count them as missing too.
        if let lines = try? await TaskCensus.unfinishedLines(url: cluster.postgres.url, ids: ids) {
            print("[chaos] not terminal after \(plan.settle) (id type status attempts dispatched updated_at):")
            for line in lines { print("[chaos]   \(line)") }
        }
        return ContinuousClock.now - began
    }

    /// Injects the scheduled faults and restarts whatever died, until the run is over.
    private func supervise(_ cluster: ChaosCluster, start: ContinuousClock.Instant) async {
        let duration = plan.duration
        let slots = ChaosCluster.coordinatorSlots
        var generations = [Int](repeating: 0, count: plan.agents)
        var killedByUs = Set<String>()
        var nextAgentKill = start + .seconds(1)
        var killSlot = 0
        // Each coordinator slot is SIGKILLed once, at a different time; Redis and PostgreSQL once each.
        var coordinatorKills = (0..<slots).map { start + duration * (0.5 + 0.1 * Double($0)) }
        var redisKilled = false
        var redisWiped = false
        var postgresRestarted = false
        var redisFreezeStarted = false
        var postgresFreezeStarted = false
        let freezeLength = min(.seconds(4), duration * 0.15)
        var background: [Task<Void, Never>] = []
        var downSince = [ContinuousClock.Instant?](repeating: nil, count: slots)
        var faultOfOutage = [Int?](repeating: nil, count: slots)
        var armed: [Int: String] = [0: Self.coordinatorFaults[0]]

        while !finished.load(ordering: .relaxed) {
            let now = ContinuousClock.now
            let inWindow = now < start + duration

            // Coordinators: restart whatever generation died; slot 0's next one armed with the next fault.
            for slot in 0..<slots where !cluster.coordinatorRuns(slot) {
                if downSince[slot] == nil {
                    // Not killed by us: it crashed at its armed fault point.
                    downSince[slot] = now
                    let generation = cluster.lastGeneration(slot)
                    let point = slot == 0 ? armed[generation] ?? "nothing" : "nothing"
                    faultOfOutage[slot] = record(.coordinatorCrashed, "coordinator \(slot) generation \(generation) died (armed: \(point))", slot: slot)
                } else if now - downSince[slot]! >= .milliseconds(300) {
                    let generation = cluster.lastGeneration(slot) + 1
                    let fault = slot == 0 && inWindow && generation < Self.coordinatorFaults.count ? Self.coordinatorFaults[generation] : nil
                    try? await cluster.startCoordinator(slot: slot, generation: generation, fault: fault)
                    if slot == 0 { armed[generation] = fault }
                    if let index = faultOfOutage[slot] { background.append(watchRecovery(of: index, url: cluster.baseURLs[slot])) }
                    downSince[slot] = nil
                    faultOfOutage[slot] = nil
                }
            }
            for slot in 0..<slots where now >= coordinatorKills[slot] {
                coordinatorKills[slot] = .now + .seconds(365 * 24 * 3600)
                if cluster.coordinatorRuns(slot), downSince[slot] == nil {
                    faultOfOutage[slot] = record(.coordinatorKilled, "coordinator \(slot) generation \(cluster.lastGeneration(slot))", slot: slot)
                    cluster.killCoordinator(slot)
                    downSince[slot] = now
                }
            }

            // Agents: replace each dead one under a new id (so its tasks must be reclaimed by lease).
            for id in cluster.exitedAgents {
                cluster.forgetAgent(id)
                if !killedByUs.contains(id) { record(.agentCrashed, id, agent: id) }
                guard let slot = Int(id.split(separator: "-")[1]) else { continue }
                generations[slot] += 1
                try? await cluster.startAgent(id: "agent-\(slot)-g\(generations[slot])", fault: nil)
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

            if !redisKilled && now >= start + duration * 0.3 && !isFrozen(.redisFrozen) {
                redisKilled = true
                let index = record(.redisKilled, cluster.isRedisCluster ? "the primary serving emails; back after 1 s as a replica" : "down for 1 s")
                do { try await cluster.killRedis() } catch { print("[chaos] could not kill Redis: \(error)") }
                background.append(Task {
                    try? await Task.sleep(for: .seconds(1))
                    do {
                        try await cluster.restartRedis()
                        self.noteServerBack(index)
                    } catch { print("[chaos] Redis did not restart: \(error)") }
                })
            }
            if !redisWiped && now >= start + duration * 0.4 && !isFrozen(.redisFrozen) {
                redisWiped = true
                let index = record(.redisWiped, cluster.isRedisCluster ? "the shard serving emails, primary and replica: down for 1 s, AOF deleted" : "down for 1 s, AOF deleted")
                do { try await cluster.killRedis(wholeShard: true) } catch { print("[chaos] could not kill Redis: \(error)") }
                background.append(Task {
                    try? await Task.sleep(for: .seconds(1))
                    do {
                        try await cluster.restartRedis(wipe: true)
                        self.noteServerBack(index)
                    } catch { print("[chaos] Redis did not restart: \(error)") }
                })
            }
            if !redisFreezeStarted && now >= start + duration * 0.05 {
                redisFreezeStarted = true
                background.append(Task { await self.freeze(.redisFrozen, for: freezeLength, cluster: cluster) })
            }
            if !postgresFreezeStarted && now >= start + duration * 0.62 {
                postgresFreezeStarted = true
                background.append(Task { await self.freeze(.postgresFrozen, for: freezeLength, cluster: cluster) })
            }
            if !postgresRestarted && now >= start + duration * 0.75 && !isFrozen(.postgresFrozen) {
                postgresRestarted = true
                background.append(Task {
                    // The fault counts from the moment the server is down, not from the order to stop it.
                    await cluster.crashPostgres()
                    let index = self.record(.postgresRestarted, "down for 1 s")
                    try? await Task.sleep(for: .seconds(1))
                    do {
                        try await cluster.startPostgres()
                        self.noteServerBack(index)
                    } catch { print("[chaos] PostgreSQL did not restart: \(error)") }
                })
            }

            try? await Task.sleep(for: .milliseconds(100))
        }
        for task in background { await task.value }
    }
}
