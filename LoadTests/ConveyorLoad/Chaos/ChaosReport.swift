import ConveyorCore
import ConveyorEmbedded
import Foundation

/// What a chaos run proved: lost tasks (must be 0), wrong statuses (must be 0), duplicate executions
/// (at-least-once: counted, not failed), and how long each fault took to recover from.
struct ChaosReport: Sendable {
    var text: String
    var json: String
    var passed: Bool

    static func make(
        plan: ChaosPlan, cluster: ChaosCluster, load: ChaosLoad, workflows: ChaosWorkflows, bulk: ChaosBulk, overload: ChaosOverload,
        faults: [FaultRecord], startMillis: Int64,
        settledAfter: Duration, allRecorded: Duration, receiver: WebhookReceiver, waitForWebhooks: () async -> Duration
    ) async throws -> ChaosReport {
        let accepted = load.accepted
        let ids = accepted.map(\.id)
        // Everything PostgreSQL holds is read before the wait for webhooks (up to two minutes): the
        // cluster's retention (90 s) drops a generation closed that long ago, and a slow delivery must
        // not turn into missing rows.
        let rows = try await TaskCensus.rows(url: cluster.postgres.url, ids: ids)
        let twins = load.twins
        let twinRows = try await TaskCensus.rows(url: cluster.postgres.url, ids: twins.onlyTwinIDs)
        let ticks = try await TaskCensus.scheduleTicks(url: cluster.postgres.url, schedule: "chaos_tick")
        let ticksReadAtMillis = WallClock.nowMillis()
        let flows = try await workflows.check(url: cluster.postgres.url, journalPath: cluster.journalPath)
        let bulkStatuses = try await bulk.statuses(url: cluster.postgres.url)
        let overloadCounts = try await TaskCensus.statusCounts(url: cluster.postgres.url, ids: overload.accepted)
        let storedOfShed = try await overload.storedOfShed(url: cluster.postgres.url)
        let webhooksDoneAfter = await waitForWebhooks()
        let executions = ExecutionJournalFile.executions(path: cluster.journalPath)

        let missingRows = ids.filter { rows[$0] == nil }.count
        let unfinished = rows.values.filter { !["succeeded", "failed", "dead", "cancelled", "skipped"].contains($0.status) }.count
        let lost = missingRows + unfinished
        // Tasks only a twin's answer named: the same promise as the rest (they exist and finish).
        let twinLost = twins.onlyTwinIDs.filter { TaskStatus(rawValue: twinRows[$0]?.status ?? "")?.isTerminal != true }.count
        let wrong = rows.values.filter { ["failed", "dead", "cancelled"].contains($0.status) }
        var statusCounts: [String: Int] = [:]
        for row in rows.values { statusCounts[row.status, default: 0] += 1 }
        // Every steps task that succeeded reported 100 % last: an attempt's last report is never lost.
        let stepsTasks = accepted.filter { $0.kind == .steps }.compactMap { rows[$0.id] }.filter { $0.status == "succeeded" }
        let withoutLastReport = stepsTasks.filter { $0.progressFraction != 1 }
        let lastReportMissing = withoutLastReport.count
        // Every task with a callback had its final record delivered, signed (at-least-once: repeats counted).
        let delivered = receiver.delivered
        let callbackTasks = accepted.filter { $0.hasCallback }
        let webhooksMissing = callbackTasks.filter { delivered[$0.id] == nil }.count
        let webhookRepeats = callbackTasks.compactMap { delivered[$0.id] }.reduce(0) { $0 + max(0, $1 - 1) }
        let delayedTasks = accepted.filter { $0.kind == .delayed }.count
        let remoteTasks = accepted.filter { $0.kind == .remote }.count
        let work = receiver.work
        // The every-second schedule across every fault: no tick missed or doubled (consecutive seconds,
        // one task each), and every tick older than 10 s has succeeded.
        let irregularTicks = zip(ticks, ticks.dropFirst()).filter { $1.tick - $0.tick != 1000 }
        let tickGaps = irregularTicks.count
        let settledTicks = ticks.filter { $0.tick < ticksReadAtMillis - 10_000 }
        let ticksUnfinished = settledTicks.filter { $0.status != "succeeded" }.count

        // The limited type (3 at once cluster-wide, 1 per key) never ran more, measured from the journal's
        // run intervals. A run the journal has no end for died with its agent (at that agent's death).
        // Attempts in flight when Redis lost writes (a kill restarted from its AOF, or a wipe) keep
        // running without the slots Redis forgot: they are left out, and counted.
        let deaths = faults.filter { $0.agent != nil }
        let redisLosses = faults.filter { $0.kind == .redisKilled || $0.kind == .redisWiped }.map(\.atMillis)
        let limitedKeys = Dictionary(uniqueKeysWithValues: accepted.filter { $0.kind == .limited }.map { ($0.id, $0.limitKey ?? "") })
        var limitedRuns = ExecutionJournalFile.runs(paths: [cluster.journalPath]).filter { limitedKeys[$0.task] != nil }
        for index in limitedRuns.indices where limitedRuns[index].endMillis == nil {
            let run = limitedRuns[index]
            limitedRuns[index].endMillis = deaths.filter { $0.agent == run.agent && $0.atMillis >= run.startMillis }.map(\.atMillis).min()
        }
        let ghostRuns = limitedRuns.filter { run in redisLosses.contains { run.startMillis <= $0 && (run.endMillis ?? .max) >= $0 } }
        let countedRuns = limitedRuns.filter { run in !redisLosses.contains { run.startMillis <= $0 && (run.endMillis ?? .max) >= $0 } }
        let limitedOverlap = ExecutionJournalFile.maxOverlap(countedRuns)
        let keyOverlap = Dictionary(grouping: countedRuns, by: { limitedKeys[$0.task]! }).values.map { ExecutionJournalFile.maxOverlap($0) }.max() ?? 0

        // Duplicates: the same attempt of the same task started more than once.
        var perAttempt: [String: Int] = [:]
        for execution in executions { perAttempt["\(execution.task)/\(execution.attempt)", default: 0] += 1 }
        let duplicateExecutions = perAttempt.values.reduce(0) { $0 + max(0, $1 - 1) }
        let acceptedSet = Set(ids + workflows.accepted.flatMap { $0.nodes.values } + overload.accepted)
        let tasksRunTwice = Set(perAttempt.filter { $0.value > 1 }.keys.compactMap { Int64($0.split(separator: "/")[0]) }).count
        let ghostExecutions = executions.filter { !acceptedSet.contains($0.task) }.count
        let redispatched = countLines(containing: "re-dispatched a task Redis did not hold", in: cluster.directory, prefix: "coordinator-")
        let takeovers = countLines(containing: "recording events another coordinator left pending", in: cluster.directory, prefix: "coordinator-")
        let generationsOpened = countLines(containing: "opened a generation of partitions", in: cluster.directory, prefix: "coordinator-")

        // Recovery: for agents, until the tasks the dead agent held had finished elsewhere; for the rest,
        // until the next accepted submission.
        var lines: [String] = []
        var faultJSON: [String] = []
        var agentRecoveries: [Double] = []
        for fault in faults {
            let offset = Double(fault.atMillis - startMillis) / 1000
            var recovery: Double?
            if let agent = fault.agent {
                let held = Set(executions.filter { $0.agent == agent && $0.atMillis <= fault.atMillis }.map(\.task))
                let finishedLater = held.compactMap { rows[$0]?.finishedAtMillis }.filter { $0 > fault.atMillis }
                if let last = finishedLater.max() {
                    recovery = Double(last - fault.atMillis) / 1000
                    agentRecoveries.append(recovery!)
                }
            } else if fault.slot != nil {
                recovery = fault.recoveredAtMillis.map { Double($0 - fault.atMillis) / 1000 }
            } else if let next = load.firstSuccess(sentAtOrAfter: fault.atMillis) {
                recovery = Double(next - fault.atMillis) / 1000
            }
            let recoveryText = recovery.map { String(format: "%.1f s", $0) } ?? "n/a"
            if fault.agent == nil {
                let what = fault.slot != nil ? "until it answered /ready again, 0.3 s restart delay included" : "until a submission sent after it was accepted"
                lines.append(String(format: "  +%5.1f s  %@ [%@]: recovered in %@ (%@)", offset, fault.kind.rawValue, fault.detail, recoveryText, what))
            }
            faultJSON.append("{\"at_s\":\(String(format: "%.2f", offset)),\"kind\":\"\(fault.kind.rawValue)\",\"detail\":\"\(fault.detail)\",\"recovery_s\":\(recovery.map { String(format: "%.2f", $0) } ?? "null")}")
        }
        let agentFaults = faults.filter { $0.agent != nil }
        let sortedAgent = agentRecoveries.sorted()
        let agentSummary = sortedAgent.isEmpty ? "no task was held at the kill" : String(
            format: "tasks they held finished elsewhere within %.1f s at most (median %.1f s; lease 3 s)",
            sortedAgent.last!, sortedAgent[sortedAgent.count / 2])

        let workflowsPassed = flows.passed && flows.accepted == workflows.total && workflows.unanswered == 0 && workflows.rejected.isEmpty
        let bulkSummary = bulk.summary
        let bulkNotCancelled = bulkStatuses.filter { $0.key != "cancelled" }.values.reduce(0, +)
        let bulkPassed = bulkSummary.tasks > 0 && bulkNotCancelled == 0 && bulkSummary.unfinishedRounds == 0
            && bulkSummary.searches == bulk.rounds && bulkSummary.failures.isEmpty
        let shed = overload.summary
        let overloadTerminal = overloadCounts.filter { TaskStatus(rawValue: $0.key)?.isTerminal == true }.values.reduce(0, +)
        let overloadLost = shed.acceptedTasks - overloadTerminal
        let overloadWrong = overloadCounts.filter { TaskStatus(rawValue: $0.key)?.isTerminal == true && $0.key != "succeeded" }.values.reduce(0, +)
        let overloadPassed = shed.shed > 0 && shed.malformedSheds.isEmpty && storedOfShed == 0 && overloadLost == 0 && overloadWrong == 0
            && shed.unanswered == 0 && shed.failures.isEmpty && shed.acceptedRequests > 0
        let passed = overloadPassed && bulkPassed && workflowsPassed && lost == 0 && wrong.isEmpty && load.unanswered == 0 && load.rejected.isEmpty && accepted.count == plan.tasks
            && lastReportMissing == 0 && webhooksMissing == 0 && receiver.invalid == 0
            && twins.answered > 0 && twins.mismatches.isEmpty && twins.refused.isEmpty && twins.unanswered == 0 && twinLost == 0
            && !ticks.isEmpty && tickGaps == 0 && ticksUnfinished == 0
            && !limitedRuns.isEmpty && limitedOverlap <= 3 && keyOverlap <= 1
        var text = """
            ── Conveyor chaos run ──
            load:        \(plan.tasks) tasks (35% noop (a fifth high priority, a fifth low), 5% limited (3 at once, 1 per key, 100/s), 10% noop delayed 0.5–3 s, 5% remote on the HTTP push handler, 20% sleep 10–200 ms, 10% steps reporting progress, 15% fail-once; every tenth with a webhook; a schedule ticking every second) over \(plan.duration), \(ChaosCluster.coordinatorSlots) coordinators, \(plan.agents) agents\(plan.redisCluster.map { ", a Redis Cluster of \($0) primaries with a replica each (queues default, emails, billing)" } ?? "")
            accepted:    \(accepted.count) of \(plan.tasks) (never answered: \(load.unanswered), rejected: \(load.rejected.count))
            statuses:    \(statusCounts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            LOST:        \(lost)\(lost > 0 ? "  (missing rows \(missingRows), unfinished \(unfinished))" : "")
            wrong:       \(wrong.count) (every task of this mix must end succeeded)
            twins:       \(twins.answered) batches also sent at the same moment to the other coordinator (same idempotency keys): answers naming other tasks \(twins.mismatches.count), refused \(twins.refused.count), never answered \(twins.unanswered), tasks only a twin named \(twins.onlyTwinIDs.count), of them LOST \(twinLost)\((twins.mismatches + twins.refused).isEmpty ? "" : "; " + (twins.mismatches + twins.refused).prefix(3).joined(separator: "; "))
            progress:    \(stepsTasks.count - lastReportMissing) of \(stepsTasks.count) steps tasks show their last report (100 %)\(withoutLastReport.isEmpty ? "" : "; not: " + withoutLastReport.prefix(5).map { "task \($0.id) at \($0.progressFraction.map { "\($0)" } ?? "none")" }.joined(separator: ", "))
            delayed:     \(delayedTasks) delayed tasks among the accepted (each must end succeeded like the rest)
            push:        \(remoteTasks) remote tasks; the worker got \(work.requests) requests and refused \(work.refused) with 503 (retried)
            limits:      \(limitedRuns.count) runs of the limited type: at most \(limitedOverlap) at once (limit 3), \(keyOverlap) per key (limit 1); \(ghostRuns.count) in flight when Redis lost writes, left out
            schedule:    \(ticks.count) ticks of the every-second schedule, \(tickGaps) gaps or doubles, \(ticksUnfinished) of \(settledTicks.count) older than 10 s not succeeded\(irregularTicks.isEmpty ? "" : "; " + irregularTicks.prefix(5).map { "\(UTCTime.format(millis: $0.tick)) then \(UTCTime.format(millis: $1.tick))" }.joined(separator: ", "))
            webhooks:    \(callbackTasks.count - webhooksMissing) of \(callbackTasks.count) tasks with a callback delivered, signed (\(webhookRepeats) repeats, at-least-once; \(receiver.refused) tries refused with 503 by the receiver; \(receiver.invalid) bad signatures; all in \(format(webhooksDoneAfter)) after the tasks settled)
            workflows:   \(flows.accepted) of \(workflows.total) accepted (6 nodes each, \(flows.nodes) nodes; never answered \(workflows.unanswered), rejected \(workflows.rejected.count)): \(flows.statuses.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")); LOST (still running) \(flows.unfinished), wrong \(flows.wrong), joins not queued exactly once \(flows.joinsNotQueuedOnce), nodes started before a dependency succeeded \(flows.startedEarly)
            bulk:        \(bulkSummary.rounds) of \(bulk.rounds) rounds of \(bulk.perRound) tasks scheduled an hour ahead, cancelled by tag through POST /v1/tasks/cancel (sent again until done): \(bulkStatuses.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")); not cancelled \(bulkNotCancelled), rounds unfinished \(bulkSummary.unfinishedRounds), searches answered \(bulkSummary.searches)\(bulkSummary.failures.isEmpty ? "" : "; " + bulkSummary.failures.prefix(3).joined(separator: "; "))
            overload:    \(overload.bursts) bursts of \(overload.requestsPerBurst) requests of \(overload.tasksPerRequest) tasks at once to one coordinator (its Submitter queue holds 1,000): \(shed.shed) sheds (503 overloaded; without a valid Retry-After or code: \(shed.malformedSheds.count)), \(shed.shedAtFirstTry) requests shed at their first try storing \(storedOfShed) tasks (must be 0); \(shed.acceptedRequests) requests accepted, \(shed.acceptedTasks) tasks: LOST \(overloadLost), wrong \(overloadWrong); never answered \(shed.unanswered)\((shed.malformedSheds + shed.failures).isEmpty ? "" : "; " + (shed.malformedSheds + shed.failures).prefix(3).joined(separator: "; "))
            executions:  \(executions.count) started; duplicate executions \(duplicateExecutions) across \(tasksRunTwice) tasks (at-least-once); \(ghostExecutions) for tasks never accepted
            reconciler:  \(redispatched) tasks re-dispatched from PostgreSQL; \(takeovers) batches of events taken over from dead coordinators
            generations: \(generationsOpened) opened during the run (task ids jumped to a new partition)
            finished:    every accepted task terminal \(format(settledAfter)) after the load ended (\(format(allRecorded)) after it began)
            faults:
            """
        text += "\n" + lines.joined(separator: "\n")
        text += "\n  \(agentFaults.count) agent deaths (\(agentFaults.filter { $0.kind == .agentKilled }.count) SIGKILL, \(agentFaults.filter { $0.kind == .agentCrashed }.count) at crash-before-complete): \(agentSummary)"
        for rejection in (load.rejected + workflows.rejected).prefix(5) { text += "\n  rejected: \(rejection)" }
        text += "\nresult:      \(passed ? "PASS" : "FAIL")"

        let json = """
            {"tasks":\(plan.tasks),"duration_s":\(plan.duration.components.seconds),"agents":\(plan.agents),"redis_cluster":\(plan.redisCluster ?? 0),"accepted":\(accepted.count),\
            "unanswered":\(load.unanswered),"rejected":\(load.rejected.count),"lost":\(lost),"wrong_status":\(wrong.count),"twins":\(twins.answered),"twin_mismatches":\(twins.mismatches.count),"twin_lost":\(twinLost),"steps_tasks":\(stepsTasks.count),"last_report_missing":\(lastReportMissing),"delayed":\(delayedTasks),"remote":\(remoteTasks),"limited_runs":\(limitedRuns.count),"limited_max_overlap":\(limitedOverlap),"limited_key_max_overlap":\(keyOverlap),"limited_ghost_runs":\(ghostRuns.count),"schedule_ticks":\(ticks.count),"schedule_gaps":\(tickGaps),"schedule_unfinished":\(ticksUnfinished),"webhook_tasks":\(callbackTasks.count),"webhooks_missing":\(webhooksMissing),"webhook_repeats":\(webhookRepeats),"bad_signatures":\(receiver.invalid),\
            "overload_sheds":\(shed.shed),"overload_stored_of_shed":\(storedOfShed),"overload_accepted_tasks":\(shed.acceptedTasks),"overload_lost":\(overloadLost),\
            "workflows":\(flows.accepted),"workflows_lost":\(flows.unfinished),"workflows_wrong":\(flows.wrong),"joins_not_queued_once":\(flows.joinsNotQueuedOnce),"nodes_started_early":\(flows.startedEarly),\
            "executions":\(executions.count),"duplicate_executions":\(duplicateExecutions),"tasks_run_twice":\(tasksRunTwice),\
            "redispatched":\(redispatched),"event_takeovers":\(takeovers),"settled_s":\(String(format: "%.1f", settledAfter.seconds)),\
            "agent_recovery_max_s":\(sortedAgent.last.map { String(format: "%.2f", $0) } ?? "null"),\
            "faults":[\(faultJSON.joined(separator: ","))],"passed":\(passed)}
            """
        return ChaosReport(text: text, json: json, passed: passed)
    }

    private static func countLines(containing needle: String, in directory: String, prefix: String) -> Int {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return files.filter { $0.hasPrefix(prefix) }.reduce(0) { total, file in
            let text = (try? String(contentsOfFile: "\(directory)/\(file)", encoding: .utf8)) ?? ""
            return total + text.split(separator: "\n").filter { $0.contains(needle) }.count
        }
    }

    private static func format(_ duration: Duration) -> String {
        String(format: "%.1f s", duration.seconds)
    }
}
