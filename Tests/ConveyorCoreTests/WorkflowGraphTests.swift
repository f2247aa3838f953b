import ConveyorCore
import Testing

@Suite("Workflow graph: checked before anything is stored")
struct WorkflowGraphTests {
    private typealias Node = WorkflowGraph.Node

    @Test("a fan-out and fan-in orders every node after its dependencies; the root is the only root")
    func fanOutFanIn() throws {
        let middle = (1...50).map { Node(key: "part-\($0)", dependsOn: ["split"]) }
        let graph = try WorkflowGraph([Node(key: "join", dependsOn: middle.map(\.key))] + middle + [Node(key: "split")])
        let position = Dictionary(uniqueKeysWithValues: graph.order.enumerated().map { (graph.nodes[$1].key, $0) })
        for (index, node) in graph.nodes.enumerated() {
            for parent in graph.dependencies[index] { #expect(position[graph.nodes[parent].key]! < position[node.key]!) }
        }
        #expect(graph.roots.map { graph.nodes[$0].key } == ["split"])
        #expect(graph.dependants[graph.nodes.firstIndex { $0.key == "split" }!].count == 50)
        #expect(graph.dependencies[0].count == 50)
    }

    @Test("a chain is each node depending on the one before")
    func chain() throws {
        let graph = try WorkflowGraph.chain(["fetch", "build", "deploy"])
        #expect(graph.order == [0, 1, 2])
        #expect(graph.dependencies == [[], [0], [1]])
    }

    @Test("the largest workflow allowed: 10,000 nodes, one root, one join of 9,998")
    func largest() throws {
        let parts = (1...9_998).map { Node(key: "p\($0)", dependsOn: ["root"]) }
        let graph = try WorkflowGraph([Node(key: "root")] + parts + [Node(key: "join", dependsOn: parts.map(\.key))])
        #expect(graph.order.count == 10_000 && graph.order.first == 0 && graph.order.last == 9_999)
        #expect(throws: WorkflowGraphError.tooManyNodes(count: 10_001, limit: 10_000)) {
            try WorkflowGraph((0...10_000).map { Node(key: "n\($0)") })
        }
    }

    @Test("a cycle is refused, naming its nodes in the direction work would flow")
    func cycle() {
        let error = #expect(throws: WorkflowGraphError.self) {
            try WorkflowGraph([Node(key: "a", dependsOn: ["c"]), Node(key: "b", dependsOn: ["a"]), Node(key: "c", dependsOn: ["b"]), Node(key: "d")])
        }
        guard case .cycle(let keys) = error else { Issue.record("expected a cycle, got \(String(describing: error))"); return }
        #expect(keys.count == 4 && keys.first == keys.last && Set(keys) == ["a", "b", "c"])
        #expect(error?.description.contains("→") == true)
        #expect(throws: WorkflowGraphError.cycle(["a", "a"])) { try WorkflowGraph([Node(key: "a", dependsOn: ["a"])]) }
    }

    @Test("unknown dependencies, repeated keys, odd keys and empty workflows are refused, naming the node")
    func refusals() {
        #expect(throws: WorkflowGraphError.unknownDependency(node: "b", dependency: "nope")) {
            try WorkflowGraph([Node(key: "a"), Node(key: "b", dependsOn: ["nope"])])
        }
        #expect(throws: WorkflowGraphError.duplicateKey("a")) { try WorkflowGraph([Node(key: "a"), Node(key: "a")]) }
        #expect(throws: WorkflowGraphError.invalidKey("has space")) { try WorkflowGraph([Node(key: "has space")]) }
        #expect(throws: WorkflowGraphError.invalidKey("")) { try WorkflowGraph([Node(key: "")]) }
        #expect(throws: WorkflowGraphError.empty) { try WorkflowGraph([]) }
    }

    @Test("a dependency named twice counts once")
    func repeatedDependency() throws {
        let graph = try WorkflowGraph([Node(key: "a"), Node(key: "b", dependsOn: ["a", "a"])])
        #expect(graph.dependencies[1] == [0] && graph.dependants[0] == [1])
    }
}
