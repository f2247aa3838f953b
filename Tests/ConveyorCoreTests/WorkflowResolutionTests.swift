import ConveyorCore
import Testing

@Suite("Workflow resolution: when a node starts or ends without running, and how a workflow ends")
struct WorkflowResolutionTests {
    private typealias Node = WorkflowGraph.Node
    private typealias State = WorkflowResolution.NodeState

    /// a → b → c, and a → d.
    private func graph() throws -> WorkflowGraph {
        try WorkflowGraph([Node(key: "a"), Node(key: "b", dependsOn: ["a"]), Node(key: "c", dependsOn: ["b"]), Node(key: "d", dependsOn: ["a"])])
    }

    @Test("roots start at once; a node starts only when every dependency succeeded")
    func startsWhenDependenciesSucceed() throws {
        let graph = try graph()
        let policies = [DependencyFailurePolicy](repeating: .fail, count: 4)
        #expect(WorkflowResolution.decide(graph, policies: policies, states: [.waiting, .waiting, .waiting, .waiting]) == [0: .start(failedDependencies: [])])
        #expect(WorkflowResolution.decide(graph, policies: policies, states: [.started, .waiting, .waiting, .waiting]).isEmpty)
        #expect(WorkflowResolution.decide(graph, policies: policies, states: [.succeeded, .waiting, .waiting, .waiting])
            == [1: .start(failedDependencies: []), 3: .start(failedDependencies: [])])
    }

    @Test("policy fail ends the node and everything below it without running: the workflow fails, never waits")
    func failCascades() throws {
        let graph = try graph()
        let decisions = WorkflowResolution.decide(graph, policies: [.fail, .fail, .fail, .fail], states: [.failed, .waiting, .waiting, .waiting])
        #expect(decisions == [1: .fail, 2: .fail, 3: .fail])
        #expect(WorkflowResolution.outcome([.failed, .failedByDependency, .failedByDependency, .failedByDependency]) == .failed)
    }

    @Test("policy skip ends the node as skipped; its dependants apply their own policies to a skipped dependency")
    func skipThenOwnPolicies() throws {
        let graph = try graph()
        let decisions = WorkflowResolution.decide(graph, policies: [.fail, .skip, .run, .skip], states: [.cancelled, .waiting, .waiting, .waiting])
        #expect(decisions == [1: .skip, 2: .start(failedDependencies: [1]), 3: .skip])
        #expect(WorkflowResolution.outcome([.cancelled, .skipped, .succeeded, .skipped]) == .cancelled)
    }

    @Test("policy run starts the node anyway, naming the dependencies that did not succeed")
    func runNamesFailedDependencies() throws {
        let join = try WorkflowGraph([Node(key: "x"), Node(key: "y"), Node(key: "z"), Node(key: "join", dependsOn: ["x", "y", "z"])])
        let decisions = WorkflowResolution.decide(join, policies: [.fail, .fail, .fail, .run], states: [.succeeded, .failed, .cancelled, .waiting])
        #expect(decisions == [3: .start(failedDependencies: [1, 2])])
    }

    @Test("a workflow has no outcome while a node waits or runs; all succeeded (or skipped) is success")
    func outcomes() {
        #expect(WorkflowResolution.outcome([.succeeded, .started]) == nil)
        #expect(WorkflowResolution.outcome([.succeeded, .waiting]) == nil)
        #expect(WorkflowResolution.outcome([.succeeded, .succeeded]) == .succeeded)
        #expect(WorkflowResolution.outcome([.succeeded, .skipped]) == .succeeded)
        #expect(WorkflowResolution.outcome([.cancelled, .failed]) == .failed)
    }
}
