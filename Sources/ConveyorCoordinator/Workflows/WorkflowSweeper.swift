import ConveyorCore
import ConveyorMetricNames
import ConveyorPostgres
import Logging
import Metrics
import ServiceLifecycle

/// Ends running workflows whose nodes have all ended, and samples how many nodes wait on dependencies.
///
/// The safety net behind "every workflow ends": a workflow is ended right after the transaction that
/// recorded its last node's end (``WorkflowAdvancer/finish(_:)``), and a coordinator that dies between
/// that COMMIT and the check leaves it running with nothing left to run. Each pass looks at every running
/// workflow, a page at a time; the check costs one index probe for a workflow still under way.
public struct WorkflowSweeper: Service {
    let store: WorkflowStore
    let advancer: WorkflowAdvancer
    let interval: Duration
    let clock: any Clock<Duration>
    let logger: Logger
    /// Fired after every pass (tests wait on it).
    public let passes = TestSignal<PeriodicService.PassOutcome>()

    static let pageSize = 1000

    public init(store: WorkflowStore, advancer: WorkflowAdvancer, interval: Duration, clock: any Clock<Duration> = ContinuousClock(), logger: Logger) {
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

    /// One pass: ends what has ended, then samples the waiting nodes.
    public func sweep() async throws {
        var after: WorkflowID?
        repeat {
            let page = try await store.runningWorkflows(after: after, limit: Self.pageSize)
            await advancer.finish(Set(page.ids))
            after = page.next
        } while after != nil
        Gauge(label: MetricsCatalog.workflowNodesWaiting.name).record(try await store.waitingNodes())
    }
}
