/// What a workflow node does when one of its dependencies ends without succeeding (failed after its
/// retries, dead-lettered or cancelled).
public enum DependencyFailurePolicy: String, Sendable, Hashable, CaseIterable {
    /// The node is marked failed without running, and so are its own dependants under this policy.
    case fail
    /// The node is marked skipped without running; its dependants treat a skipped dependency as not
    /// succeeded, each by its own policy.
    case skip
    /// The node runs anyway, told which dependencies did not succeed.
    case run
}

/// The dependency graph of one workflow, checked before anything is stored: keys unique and plain,
/// every dependency known, no cycle, a bounded size. Nodes are kept in the order given; ``order`` is a
/// topological order (every node after its dependencies), which is the order rows are written in.
///
/// Pure, so the checks that decide between 201 and 400/422 are unit-tested without a server.
public struct WorkflowGraph: Sendable, Hashable {
    public struct Node: Sendable, Hashable {
        public var key: String
        public var dependsOn: [String]

        public init(key: String, dependsOn: [String] = []) {
            self.key = key
            self.dependsOn = dependsOn
        }
    }

    /// Most nodes in one workflow: a 10,000-node fan-out and fan-in fits; the whole graph is written in
    /// one transaction, so the bound keeps that transaction (and the request body) reasonable.
    public static let maximumNodes = 10_000
    /// Longest node key (bytes): keys show in errors, results and the API.
    public static let maximumKeyBytes = 128

    public let nodes: [Node]
    /// Indexes into ``nodes``, every node after all of its dependencies.
    public let order: [Int]
    /// For each node (by index), the indexes of the nodes that depend on it.
    public let dependants: [[Int]]
    /// For each node (by index), the indexes of its dependencies, without repeats.
    public let dependencies: [[Int]]

    /// The nodes without dependencies: they start as soon as the workflow is stored.
    public var roots: [Int] { dependencies.indices.filter { dependencies[$0].isEmpty } }

    public init(_ nodes: [Node]) throws(WorkflowGraphError) {
        guard !nodes.isEmpty else { throw .empty }
        guard nodes.count <= Self.maximumNodes else { throw .tooManyNodes(count: nodes.count, limit: Self.maximumNodes) }
        var indexByKey: [String: Int] = [:]
        indexByKey.reserveCapacity(nodes.count)
        for (index, node) in nodes.enumerated() {
            guard Self.isPlainKey(node.key) else { throw .invalidKey(node.key) }
            guard indexByKey.updateValue(index, forKey: node.key) == nil else { throw .duplicateKey(node.key) }
        }
        var dependencies = [[Int]](repeating: [], count: nodes.count)
        var dependants = [[Int]](repeating: [], count: nodes.count)
        for (index, node) in nodes.enumerated() {
            var seen = Set<Int>()
            for dependency in node.dependsOn {
                guard let parent = indexByKey[dependency] else { throw .unknownDependency(node: node.key, dependency: dependency) }
                guard parent != index else { throw .cycle([node.key, node.key]) }
                if seen.insert(parent).inserted {
                    dependencies[index].append(parent)
                    dependants[parent].append(index)
                }
            }
        }
        // Kahn's algorithm: what is left once no node without unmet dependencies remains is in a cycle.
        var unmet = dependencies.map(\.count)
        var order: [Int] = []
        order.reserveCapacity(nodes.count)
        var ready = unmet.indices.filter { unmet[$0] == 0 }
        while let next = ready.popLast() {
            order.append(next)
            for child in dependants[next] {
                unmet[child] -= 1
                if unmet[child] == 0 { ready.append(child) }
            }
        }
        guard order.count == nodes.count else {
            throw .cycle(Self.oneCycle(among: unmet.indices.filter { unmet[$0] > 0 }, dependencies: dependencies).map { nodes[$0].key })
        }
        self.nodes = nodes
        self.order = order
        self.dependants = dependants
        self.dependencies = dependencies
    }

    /// A chain: each node depends on the one before it.
    public static func chain(_ keys: [String]) throws(WorkflowGraphError) -> WorkflowGraph {
        try WorkflowGraph(keys.enumerated().map { index, key in Node(key: key, dependsOn: index == 0 ? [] : [keys[index - 1]]) })
    }

    /// Letters, digits and `_ - . :`, 1–128 bytes.
    public static func isPlainKey(_ key: String) -> Bool {
        !key.isEmpty && key.utf8.count <= maximumKeyBytes && key.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: ":")
        }
    }

    /// One cycle among `stuck` (nodes Kahn's algorithm could not order), as a closed path of indexes
    /// (first and last the same), for an error that names the nodes. Walking dependencies from any stuck
    /// node must revisit one: every stuck node has a stuck dependency.
    private static func oneCycle(among stuck: [Int], dependencies: [[Int]]) -> [Int] {
        let stuckSet = Set(stuck)
        var path: [Int] = []
        var position: [Int: Int] = [:]
        var current = stuck[0]
        while position[current] == nil {
            position[current] = path.count
            path.append(current)
            current = dependencies[current].first { stuckSet.contains($0) }!
        }
        // `current` depends on …, which depends on `current`: the path from its first visit, reversed so
        // that it reads in the direction work flows (dependency → dependant).
        return Array((path[position[current]!...] + [current]).reversed())
    }
}

/// Why a workflow's graph was refused: each case names the node, so the API's 400 can too.
public enum WorkflowGraphError: Error, Sendable, Hashable, CustomStringConvertible {
    case empty
    case tooManyNodes(count: Int, limit: Int)
    case invalidKey(String)
    case duplicateKey(String)
    case unknownDependency(node: String, dependency: String)
    /// The keys of one cycle, in the direction work would flow, the first repeated at the end.
    case cycle([String])

    public var description: String {
        switch self {
        case .empty: "a workflow needs at least one node"
        case .tooManyNodes(let count, let limit): "\(count) nodes; a workflow has at most \(limit)"
        case .invalidKey(let key): "node key '\(key)': must be 1–\(WorkflowGraph.maximumKeyBytes) bytes of letters, digits, '_', '-', '.' or ':'"
        case .duplicateKey(let key): "node key '\(key)' is used twice"
        case .unknownDependency(let node, let dependency): "node '\(node)' depends on '\(dependency)', which is not a node of this workflow"
        case .cycle(let keys): "the dependencies form a cycle: \(keys.joined(separator: " → "))"
        }
    }
}
