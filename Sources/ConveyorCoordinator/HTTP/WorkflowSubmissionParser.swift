import ConveyorCore
import ConveyorPostgres
import Foundation

/// The body of `POST /v1/workflows`: a name and either `nodes` (a graph) or `chain` (a line).
struct WorkflowSubmissionBody: Decodable, Sendable {
    var name: String
    var nodes: [WorkflowNodeBody]?
    var chain: [WorkflowNodeBody]?
}

/// One node: a key, its dependencies and its policy, and the options a task takes. In a `chain` the
/// key is optional (a node without one is named by its position, `1`, `2`, …) and `depends_on` is not
/// written: each node depends on the one before it.
struct WorkflowNodeBody: Decodable, Sendable {
    var key: String?
    var dependsOn: [String]?
    var onDependencyFailure: String?
    var task: TaskSubmissionBody

    enum CodingKeys: String, CodingKey {
        case key
        case dependsOn = "depends_on"
        case onDependencyFailure = "on_dependency_failure"
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        key = try container.decodeIfPresent(String.self, forKey: .key)
        dependsOn = try container.decodeIfPresent([String].self, forKey: .dependsOn)
        onDependencyFailure = try container.decodeIfPresent(String.self, forKey: .onDependencyFailure)
        // The task's own fields sit beside the node's, in the same object.
        task = try TaskSubmissionBody(from: decoder)
    }
}

extension TaskSubmissionParser {
    /// Longest workflow name (bytes).
    static let maxWorkflowNameBytes = 128

    /// Validates a whole workflow before anything is stored: the graph (acyclic, every dependency known,
    /// at most ``WorkflowGraph/maximumNodes`` nodes) and every node's task, each error naming the node.
    /// Node tasks take every option a task does except a schedule (a node starts when its dependencies
    /// succeed) and an idempotency key of their own (the workflow's `Idempotency-Key` covers them all).
    package func parseWorkflow(
        _ body: Data, correlationID: String, idempotencyKey: String? = nil, now: Int64
    ) throws(APIError) -> NewWorkflow {
        try Self.checkIdempotencyKey(idempotencyKey, at: "Idempotency-Key: ", index: nil)
        let decoded: WorkflowSubmissionBody = try Self.decode(body)
        guard !decoded.name.isEmpty, decoded.name.utf8.count <= Self.maxWorkflowNameBytes,
            !decoded.name.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F })
        else {
            throw .badRequest("name: must be 1–\(Self.maxWorkflowNameBytes) bytes without control characters", code: "invalid_field")
        }
        let elements: [WorkflowNodeBody]
        let isChain: Bool
        switch (decoded.nodes, decoded.chain) {
        case (let nodes?, nil): (elements, isChain) = (nodes, false)
        case (nil, let chain?): (elements, isChain) = (chain, true)
        default: throw .badRequest("give the workflow's 'nodes' or its 'chain', not both and not neither", code: "invalid_workflow")
        }
        guard elements.count <= WorkflowGraph.maximumNodes else {
            throw .badRequest("\(elements.count) nodes; a workflow has at most \(WorkflowGraph.maximumNodes)", code: "workflow_too_large")
        }
        var keys: [String] = []
        keys.reserveCapacity(elements.count)
        for (index, element) in elements.enumerated() {
            if isChain {
                if element.dependsOn != nil {
                    throw .badRequest("chain[\(index)].depends_on: a chain's nodes depend on the one before; use 'nodes' for a graph", code: "invalid_workflow", index: index)
                }
                keys.append(element.key ?? String(index + 1))
            } else {
                guard let key = element.key else { throw .badRequest("nodes[\(index)].key: every node needs a key", code: "invalid_workflow", index: index) }
                keys.append(key)
            }
        }
        let graph: WorkflowGraph
        do {
            graph = isChain
                ? try WorkflowGraph.chain(keys)
                : try WorkflowGraph(zip(keys, elements).map { WorkflowGraph.Node(key: $0, dependsOn: $1.dependsOn ?? []) })
        } catch {
            throw .badRequest(error.description, code: "invalid_workflow")
        }
        var nodes: [NewWorkflow.Node] = []
        nodes.reserveCapacity(elements.count)
        for (index, element) in elements.enumerated() {
            let at = "\(isChain ? "chain" : "nodes")[\(index)] ('\(keys[index])')."
            if element.task.delay != nil || element.task.runAt != nil {
                throw .badRequest("\(at)delay, run_at: a workflow node starts when its dependencies succeed", code: "invalid_workflow", index: index)
            }
            if element.task.idempotencyKey != nil {
                throw .badRequest("\(at)idempotency_key: the workflow's Idempotency-Key header covers its nodes", code: "invalid_workflow", index: index)
            }
            var policy = DependencyFailurePolicy.fail
            if let text = element.onDependencyFailure {
                guard let parsed = DependencyFailurePolicy(rawValue: text) else {
                    throw .badRequest("\(at)on_dependency_failure: must be \"fail\", \"skip\" or \"run\"", code: "invalid_field", index: index)
                }
                policy = parsed
            }
            let task = try validate(element.task, index: index, label: at, correlationID: correlationID, idempotencyKey: nil, now: now)
            nodes.append(NewWorkflow.Node(key: keys[index], task: task, onDependencyFailure: policy))
        }
        return NewWorkflow(
            name: decoded.name, graph: graph, nodes: nodes, correlationID: correlationID, idempotencyKey: idempotencyKey, createdAtMillis: now)
    }
}
