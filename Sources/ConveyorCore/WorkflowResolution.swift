/// The rules by which a workflow moves on, as a pure function over one graph: when its dependencies
/// have ended, a node starts, or ends without running (failed or skipped) by its
/// ``DependencyFailurePolicy``; and a workflow whose nodes have all ended has an outcome.
///
/// The Recorder applies the same rules in SQL inside its merge transaction (DESIGN §8); this is their
/// specification, small enough to test every case by hand, and the reference the SQL is checked against.
public enum WorkflowResolution {
    /// Where one node stands.
    public enum NodeState: Sendable, Hashable {
        /// Some dependency has not ended.
        case waiting
        /// Started (queued or running).
        case started
        case succeeded
        /// Failed after its retries, or dead-lettered.
        case failed
        case cancelled
        /// Ended without running: a dependency did not succeed and its policy is `skip`.
        case skipped
        /// Ended without running: a dependency did not succeed and its policy is `fail`.
        case failedByDependency

        public var hasEnded: Bool {
            switch self {
            case .waiting, .started: false
            case .succeeded, .failed, .cancelled, .skipped, .failedByDependency: true
            }
        }
    }

    /// What becomes of a waiting node whose dependencies have all ended.
    public enum Decision: Sendable, Hashable {
        /// It starts; `failedDependencies` (indexes) are those that did not succeed (policy `run`).
        case start(failedDependencies: [Int])
        case skip
        case fail
    }

    /// The decisions for every waiting node whose dependencies have all ended, cascading: a node that
    /// ends without running may decide its own dependants in turn. Nodes not listed stay as they are.
    public static func decide(
        _ graph: WorkflowGraph, policies: [DependencyFailurePolicy], states: [NodeState]
    ) -> [Int: Decision] {
        var states = states
        var decisions: [Int: Decision] = [:]
        var candidates = Set(states.indices.filter { states[$0] == .waiting })
        while !candidates.isEmpty {
            var next = Set<Int>()
            for node in candidates.sorted() where states[node] == .waiting {
                let parents = graph.dependencies[node]
                guard parents.allSatisfy({ states[$0].hasEnded }) else { continue }
                let notSucceeded = parents.filter { states[$0] != .succeeded }
                let decision: Decision
                if notSucceeded.isEmpty {
                    decision = .start(failedDependencies: [])
                } else {
                    switch policies[node] {
                    case .fail: decision = .fail
                    case .skip: decision = .skip
                    case .run: decision = .start(failedDependencies: notSucceeded)
                    }
                }
                decisions[node] = decision
                switch decision {
                case .start: states[node] = .started
                case .skip:
                    states[node] = .skipped
                    next.formUnion(graph.dependants[node])
                case .fail:
                    states[node] = .failedByDependency
                    next.formUnion(graph.dependants[node])
                }
            }
            candidates = next
        }
        return decisions
    }

    /// How a workflow ended.
    public enum Outcome: String, Sendable, Hashable {
        case succeeded, failed, cancelled
    }

    /// The workflow's outcome once every node has ended, else nil: failed if any node failed (itself or
    /// by a dependency), else cancelled if any was cancelled, else succeeded (skipped nodes included).
    public static func outcome(_ states: [NodeState]) -> Outcome? {
        guard states.allSatisfy(\.hasEnded) else { return nil }
        if states.contains(where: { $0 == .failed || $0 == .failedByDependency }) { return .failed }
        if states.contains(.cancelled) { return .cancelled }
        return .succeeded
    }
}
