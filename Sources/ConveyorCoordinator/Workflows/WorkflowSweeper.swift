import ConveyorCore
import ConveyorMetricNames
import ConveyorPostgres
import Logging
import Metrics
import ServiceLifecycle

/// Ends running workflows whose nodes have all ended, decides nodes left waiting although their
/// dependencies have all ended, and samples how many nodes wait on dependencies.
///
/// The safety net behind "every workflow ends": a workflow is ended right after the transaction that
/// recorded its last node's end (``WorkflowAdvancer/finish(_:)``), and a coordinator that dies between
/// that COMMIT and the check leaves it running with nothing left to run. Each pass looks at every running
/// workflow, a page at a time; the check costs one index probe for a workflow still under way.
public struct WorkflowSweeper: Service {
    let store: WorkflowStore
    let advancer: WorkflowAdvancer
    let interval: Duration
    /// How long a waiting node whose dependencies have all ended is left before it is decided here (the
    /// dispatch grace: the join decides such a node in the transaction that ends its last dependency,
    /// so one seen here that long is one the join missed).
    let repairAfter: Duration
    let clock: any Clock<Duration>
    let logger: Logger
    /// Fired after every pass (tests wait on it).
    public let passes = TestSignal<PeriodicService.PassOutcome>()

    static let pageSize = 1000

    public init(
        store: WorkflowStore, advancer: WorkflowAdvancer, interval: Duration, repairAfter: Duration,
        clock: any Clock<Duration> = ContinuousClock(), logger: Logger
    ) {
        self.repairAfter = repairAfter
        self.store = store
        self.advancer = advancer
        self.interval = interval
        self.clock = clock
        self.logger = logger
    }

    public func run() async throws {
        await PeriodicService(name: "ending finished workflows", interval: interval, clock: clock, logger: logger, passes: passes) { _ in
            try await sweep()
            return nil
        }.run()
    }

    /// One pass: decides stuck nodes, ends what has ended, then samples the waiting nodes.
    public func sweep() async throws {
        let repaired = try await store.repairStuckNodes(idleFor: repairAfter)
        if !repaired.isEmpty {
            logger.warning("decided workflow nodes left waiting after their dependencies ended", metadata: [
                "queued": "\(repaired.queued.count)", "ended": "\(repaired.ended.count)",
            ])
            await advancer.carryOut(repaired)
        }
        var after: WorkflowID?
        repeat {
            let page = try await store.runningWorkflows(after: after, limit: Self.pageSize)
            await advancer.finish(Set(page.ids))
            after = page.next
        } while after != nil
        Gauge(label: MetricsCatalog.workflowNodesWaiting.name).record(try await store.waitingNodes())
    }
}
