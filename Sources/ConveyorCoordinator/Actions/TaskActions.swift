import ConveyorCore
import ConveyorPostgres
import ConveyorRedis
import Logging

/// Cancels and retries tasks chosen by a filter: what `POST /v1/tasks/cancel`, `POST /v1/tasks/retry`
/// and the console's buttons do. Works a page of the search at a time (newest first), each page one
/// transaction in PostgreSQL and one pipeline in Redis, and stops at the caller's bound.
public struct TaskActions: Sendable {
    let store: TaskStore
    let redis: any RedisClient
    let keys: RedisKeys
    let deadLetters: DeadLetterQueue
    let workflows: WorkflowAdvancer
    let workflowStore: WorkflowStore
    /// Workflows that ended longer ago are not retried: retention is about to drop their nodes.
    let retryableFor: Duration
    let logger: Logger
    /// Wakes the WebhookDispatcher: a cancel may have queued deliveries.
    let onCancelled: @Sendable () -> Void

    /// The most tasks one call acts on.
    public static let maximumBound = 10_000
    /// Tasks a call acts on when the caller names no bound.
    public static let defaultBound = 1_000
    /// Most search pages one call reads: a filter that only the rows can check (error text) walks a
    /// bounded stretch of history per call, and says there may be more.
    static let maximumPages = 100

    /// How many tasks a bulk action acted on, and whether it stopped at its bound with more to go.
    public struct Outcome: Sendable, Hashable {
        public var actedOn: Int
        public var more: Bool
    }

    public enum ActionError: Error, Sendable, Equatable {
        /// The filter's statuses leave nothing the action applies to.
        case statusesNotApplicable(String)
    }

    /// The statuses a cancel applies to.
    public static let cancellable: Set<TaskStatus> = Set(TaskStatus.allCases.filter { !$0.isTerminal })
    /// The statuses a retry applies to. A `failed` task is a workflow node that did not run because a
    /// dependency did not succeed: retrying it means retrying its workflow, which runs that dependency first.
    public static let retryable: Set<TaskStatus> = [.failed, .dead]

    /// Cancels up to `bound` unfinished tasks matching `filter`, as a cancel of each would: the queue's
    /// cancelled set first (so a running task's agent is told), then the rows.
    public func cancel(matching filter: TaskFilter, bound: Int) async throws -> Outcome {
        try await each(page: try Self.narrowed(filter, to: Self.cancellable, action: "cancel"), bound: bound) { tasks in
            try await cancel(tasks.map { ($0.id, $0.queue, $0.status) }).count
        }
    }

    /// Retries up to `bound` failed or dead tasks matching `filter`: a dead task with a fresh budget of
    /// attempts, a failed node by retrying its workflow (once per workflow). Counts the tasks queued again.
    public func retry(matching filter: TaskFilter, bound: Int) async throws -> Outcome {
        var retriedWorkflows: Set<WorkflowID> = []
        return try await each(page: try Self.narrowed(filter, to: Self.retryable, action: "retry"), bound: bound) { tasks in
            var count = try await deadLetters.redrive(tasks.filter { $0.status == .dead }.map(\.id)).count
            for task in tasks where task.status == .failed {
                guard let workflow = task.workflowID.map({ WorkflowID(rawValue: $0) }) else { continue }
                if retriedWorkflows.contains(workflow) {
                    count += 1
                    continue
                }
                do {
                    _ = try await retryWorkflow(workflow)
                    retriedWorkflows.insert(workflow)
                    count += 1
                } catch let error as WorkflowActionError {
                    // Retried meanwhile, or too old: the node is not this call's to count.
                    logger.info("failed node's workflow not retried", metadata: ["task_id": "\(task.id)", "reason": "\(error)"])
                }
            }
            return count
        }
    }

    /// Cancels every node of a running workflow that has not ended; returns how many. The started ones'
    /// ids go into their queues' cancelled sets first (their agents stop them, a queued entry is dropped
    /// when taken), then one transaction marks them and the workflow cancelled; a node a join queued
    /// meanwhile is told afterwards. Throws ``WorkflowActionError`` when it cannot.
    public func cancelWorkflow(_ id: WorkflowID) async throws -> Int {
        let started = try await workflowStore.unfinishedNodes(of: id).filter(\.wasStarted)
        do {
            try await mark("SADD", started)
        } catch {
            // Some marks may have been set: take them back, so nothing is stopped by a cancel that failed.
            try? await mark("SREM", started)
            throw error
        }
        let cancelled: [CancelledNode]
        let workflow: FinishedWorkflow?
        do {
            (cancelled, workflow) = try await workflowStore.cancel(id)
        } catch {
            try? await mark("SREM", started)
            throw error
        }
        let told = Set(started.map(\.id))
        try? await mark("SADD", cancelled.filter { $0.wasStarted && !told.contains($0.id) })
        onCancelled()
        if let workflow { WorkflowAdvancer.recordFinished(workflow) }
        return cancelled.count
    }

    /// Adds (`SADD`) or removes (`SREM`) nodes' ids in their queues' cancelled sets, one pipeline.
    private func mark(_ command: String, _ nodes: [CancelledNode]) async throws {
        guard !nodes.isEmpty else { return }
        let byQueue = Dictionary(grouping: nodes, by: \.queue)
        let replies = try await redis.send(byQueue.map { queue, nodes in RedisCommand(command, [keys.cancelled(queue)] + nodes.map(\.id.description)) })
        if let failure = replies.compactMap(\.errorMessage).first { throw RedisError(.commandFailed, failure, command: command) }
    }

    /// Runs a failed or cancelled workflow's nodes that did not succeed again; succeeded nodes keep their
    /// results. Returns what the retry queued. Throws ``WorkflowActionError`` when it cannot.
    public func retryWorkflow(_ id: WorkflowID) async throws -> WorkflowAdvance {
        let (advance, reopened) = try await workflowStore.retry(id, finishedWithin: retryableFor)
        // A cancel's marks would stop the new attempts too (a stale attempt still in Redis then runs; its
        // events are below the node's redrive floor and change nothing).
        do {
            try await mark("SREM", reopened)
        } catch {
            logger.warning("could not clear the cancel marks of retried nodes; they may be cancelled again", metadata: [
                "workflow_id": "\(id)", "error": "\(error)",
            ])
        }
        await workflows.carryOut(advance)
        return advance
    }

    /// Cancels the given tasks (those already finished are left alone); returns the ids cancelled.
    @discardableResult
    public func cancel(_ tasks: [(id: TaskID, queue: String, status: TaskStatus)]) async throws -> [TaskID] {
        // A waiting workflow node has no entry in Redis to stop, and a mark would outlive it.
        let marked = Dictionary(grouping: tasks.filter { $0.status != .waiting && !$0.status.isTerminal }, by: \.queue)
        let commands = marked.map { queue, tasks in RedisCommand("SADD", [keys.cancelled(queue)] + tasks.map(\.id.description)) }
        if !commands.isEmpty { _ = try await redis.send(commands) }
        let (cancelled, advance) = try await store.cancel(tasks.map(\.id))
        let done = Set(cancelled)
        let stale = marked.compactMap { queue, tasks -> RedisCommand? in
            let ids = tasks.map(\.id).filter { !done.contains($0) }
            return ids.isEmpty ? nil : RedisCommand("SREM", [keys.cancelled(queue)] + ids.map(\.description))
        }
        if !stale.isEmpty { _ = try? await redis.send(stale) }
        await workflows.carryOut(advance)
        if !cancelled.isEmpty { onCancelled() }
        return cancelled
    }

    /// `filter` with its statuses cut to `applicable` (all of them when it names none).
    static func narrowed(_ filter: TaskFilter, to applicable: Set<TaskStatus>, action: String) throws(ActionError) -> TaskFilter {
        var narrowed = filter
        narrowed.statuses = filter.statuses.isEmpty ? applicable : filter.statuses.intersection(applicable)
        guard !narrowed.statuses.isEmpty else {
            let names = applicable.map(\.rawValue).sorted().joined(separator: ", ")
            throw .statusesNotApplicable("status: \(action) applies to \(names) tasks only")
        }
        return narrowed
    }

    /// Runs `act` on successive pages of the search until `bound` tasks were acted on or none are left.
    private func each(page filter: TaskFilter, bound: Int, _ act: ([TaskSummary]) async throws -> Int) async throws -> Outcome {
        var actedOn = 0
        var cursor: TaskID?
        for _ in 0..<Self.maximumPages {
            let page = try await store.search(filter, limit: min(TaskStore.maximumPageSize, bound - actedOn), before: cursor)
            if !page.tasks.isEmpty { actedOn += try await act(page.tasks) }
            cursor = page.nextCursor
            guard let _ = cursor, actedOn < bound else { return Outcome(actedOn: actedOn, more: cursor != nil) }
        }
        return Outcome(actedOn: actedOn, more: true)
    }
}
