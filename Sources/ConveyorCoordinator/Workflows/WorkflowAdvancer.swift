import ConveyorCore
import ConveyorMetricNames
import ConveyorObservability
import ConveyorPostgres
import ConveyorRedis
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Carries out, after its transaction committed, what a node's end decided for its workflow: puts the
/// nodes it queued on their ready streams (one pipeline), marks them dispatched, and ends the workflows
/// whose last node ended (with their metrics).
///
/// The Recorder hands its batches' decisions over (``enqueue(_:)``) and goes on recording; the
/// service's loop merges whatever arrived meanwhile and carries it out at once, so a busy join costs
/// one read, one pipeline and one update per round, not per Recorder batch (group commit, like the
/// Submitter's). The API's cancel and retry carry out their own decisions directly.
///
/// Best effort by design: the decision itself is committed. A node queued but not yet in Redis is
/// `queued` and not dispatched, so the Reconciler puts it there after the dispatch grace; a workflow
/// left running with every node ended is ended by the ``WorkflowSweeper``. Graceful shutdown: it stops
/// after the Recorder (it comes before it in the services) and carries out what is queued.
public final class WorkflowAdvancer: Service, Sendable {
    private let workflows: WorkflowStore
    private let tasks: TaskStore
    private let redis: any RedisClient
    private let keys: RedisKeys
    private let logger: Logger
    /// Streams whose consumer group is known to exist.
    private let preparedStreams = Mutex<Set<String>>([])
    /// Decisions handed over by the Recorder, weighed by the nodes and workflows they name.
    private let queue = GroupCommitQueue<WorkflowAdvance>(capacity: 50_000)
    static let maximumRound = 20_000

    public init(workflows: WorkflowStore, tasks: TaskStore, redis: any RedisClient, keys: RedisKeys, logger: Logger) {
        self.workflows = workflows
        self.tasks = tasks
        self.redis = redis
        self.keys = keys
        self.logger = logger
    }

    public func run() async throws {
        await queue.consume(maximumWeight: Self.maximumRound) { batch in
            var merged = WorkflowAdvance()
            for advance in batch { merged.merge(advance) }
            await carryOut(merged)
        }
    }

    /// Hands a Recorder batch's decisions to the service's next round; waits only while the queue is
    /// full. After shutdown has begun, carries them out itself.
    public func enqueue(_ advance: WorkflowAdvance) async {
        guard !advance.isEmpty else { return }
        do {
            try await queue.enqueue(advance, weight: max(1, advance.queued.count + advance.workflows.count))
        } catch {
            await carryOut(advance)
        }
    }

    /// Dispatches the queued nodes and ends the finished workflows of `advance`. Never throws: what fails
    /// is logged and left to the Reconciler and the WorkflowSweeper.
    public func carryOut(_ advance: WorkflowAdvance) async {
        guard !advance.isEmpty else { return }
        if !advance.queued.isEmpty {
            do {
                let nodes = try await workflows.dispatchable(advance.queued)
                // Enqueued when its dependencies ended: its end-to-end time is its own, not theirs.
                let now = WallClock.nowMillis()
                try await dispatch(nodes.map { node in
                    var envelope = node.envelope
                    envelope.enqueuedAtMillis = now
                    return (envelope, node.queue)
                })
                try await tasks.markDispatched(nodes.map(\.id))
                Counter(label: MetricsCatalog.workflowNodesDispatched.name).increment(by: nodes.count)
            } catch {
                logger.warning("could not dispatch workflow nodes; the Reconciler will", metadata: [
                    LogKeys.count: "\(advance.queued.count)", LogKeys.error: "\(error)",
                ])
            }
        }
        await finish(advance.workflows)
    }

    /// Puts a new workflow's roots on their ready streams and marks them dispatched. Throws when Redis
    /// could not take them: they stay queued and undispatched, and the Reconciler dispatches them.
    public func dispatchRoots(_ roots: [(task: NewTask, id: TaskID)]) async throws {
        guard !roots.isEmpty else { return }
        try await dispatch(roots.map { task, id in
            (TaskEnvelope(
                id: id, type: task.type, params: task.params, correlationID: task.correlationID, attempt: 1,
                maxAttempts: task.maxAttempts, enqueuedAtMillis: task.createdAtMillis, hasCallback: task.callbackURL != nil,
                priority: task.priority, limitKey: task.limitKey), task.queue)
        })
        try await tasks.markDispatched(roots.map(\.id))
    }

    /// Ends the workflows among `ids` whose nodes have all ended, recording their metrics.
    public func finish(_ ids: Set<WorkflowID>) async {
        guard !ids.isEmpty else { return }
        do {
            for workflow in try await workflows.finishIfEnded(ids) {
                Self.recordFinished(workflow)
                logger.info("workflow finished", metadata: [
                    "workflow_id": "\(workflow.id)", "workflow": "\(workflow.name)", "status": "\(workflow.status.rawValue)",
                    "duration_ms": "\(workflow.durationMillis)",
                ])
            }
        } catch {
            logger.warning("could not end finished workflows; the WorkflowSweeper will", metadata: [LogKeys.error: "\(error)"])
        }
    }

    static func recordFinished(_ workflow: FinishedWorkflow) {
        let dimensions = [("workflow", workflow.name), ("outcome", workflow.status.rawValue)]
        Counter(label: MetricsCatalog.workflowsFinished.name, dimensions: dimensions).increment()
        Timer(label: MetricsCatalog.workflowDuration.name, dimensions: dimensions).recordMilliseconds(workflow.durationMillis)
    }

    private func dispatch(_ entries: [(envelope: TaskEnvelope, queue: String)]) async throws {
        guard !entries.isEmpty else { return }
        let streams = Set(entries.map { keys.ready($0.queue, priority: $0.envelope.priority) })
        for stream in preparedStreams.withLock({ streams.subtracting($0) }) {
            try await redis.ensureGroup(stream: stream, group: RedisKeys.agentsGroup)
            preparedStreams.withLock { _ = $0.insert(stream) }
        }
        let replies: [RedisReply]
        do {
            replies = try await redis.send(entries.map { envelope, queue in
                RedisConnection.xadd(stream: keys.ready(queue, priority: envelope.priority), envelope: envelope)
            })
        } catch {
            preparedStreams.withLock { $0.removeAll() }
            throw error
        }
        if let failure = replies.first(where: { $0.errorMessage != nil }) {
            preparedStreams.withLock { $0.removeAll() }
            throw RedisError(.commandFailed, failure.errorMessage!, command: "XADD")
        }
    }
}
