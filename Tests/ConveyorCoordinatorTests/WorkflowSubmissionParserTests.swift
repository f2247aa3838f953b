@testable import ConveyorCoordinator
import ConveyorCore
import ConveyorPostgres
import Foundation
import Testing

@Suite("Workflow submissions: validated before anything is stored (no I/O)")
struct WorkflowSubmissionParserTests {
    let parser = TaskSubmissionParser(registry: TaskTypeRegistry([
        TaskTypeDefinition(name: "noop", handler: "noop"),
        TaskTypeDefinition(name: "resize", queue: "images", maxAttempts: 5, handler: "command", command: ["/bin/true"]),
    ]))

    private func parse(_ json: String) throws(APIError) -> NewWorkflow {
        try parser.parseWorkflow(Data(json.utf8), correlationID: "c", now: 1)
    }

    @Test("a graph's nodes keep their keys, dependencies, policies and every task option")
    func graph() throws {
        let workflow = try parse("""
            {"name":"render","nodes":[
              {"key":"fetch","type":"noop","params":{"url":"x"},"priority":"high","tags":{"customer":"acme"}},
              {"key":"thumb","type":"resize","depends_on":["fetch"],"max_attempts":2},
              {"key":"report","type":"noop","depends_on":["fetch","thumb"],"on_dependency_failure":"run"}]}
            """)
        #expect(workflow.name == "render" && workflow.nodes.map(\.key) == ["fetch", "thumb", "report"])
        #expect(workflow.graph.roots == [0] && workflow.graph.dependencies[2] == [0, 1])
        #expect(workflow.nodes[0].task.priority == .high && workflow.nodes[0].task.params == #"{"url":"x"}"#)
        #expect(workflow.nodes[1].task.queue == "images" && workflow.nodes[1].task.maxAttempts == 2)
        #expect(workflow.nodes.map(\.onDependencyFailure) == [.fail, .fail, .run])
    }

    @Test("a chain needs no keys or dependencies: each node follows the one before, named by position")
    func chain() throws {
        let workflow = try parse(#"{"name":"deploy","chain":[{"type":"noop"},{"key":"build","type":"resize"},{"type":"noop"}]}"#)
        #expect(workflow.nodes.map(\.key) == ["1", "build", "3"])
        #expect(workflow.graph.dependencies == [[], [0], [1]])
    }

    @Test("each kind of bad workflow is refused with its code, naming the node", arguments: [
        (#"{"name":"w"}"#, "invalid_workflow", "not both and not neither"),
        (#"{"name":"w","nodes":[],"chain":[]}"#, "invalid_workflow", "not both"),
        (#"{"name":"","nodes":[{"key":"a","type":"noop"}]}"#, "invalid_field", "name"),
        (#"{"name":"w","nodes":[{"type":"noop"}]}"#, "invalid_workflow", "nodes[0].key"),
        (#"{"name":"w","nodes":[{"key":"a","type":"noop","depends_on":["b"]},{"key":"b","type":"noop","depends_on":["a"]}]}"#, "invalid_workflow", "cycle"),
        (#"{"name":"w","nodes":[{"key":"a","type":"noop","depends_on":["zzz"]}]}"#, "invalid_workflow", "'zzz'"),
        (#"{"name":"w","nodes":[{"key":"a","type":"noop"},{"key":"a","type":"noop"}]}"#, "invalid_workflow", "used twice"),
        (#"{"name":"w","nodes":[{"key":"a","type":"nope"}]}"#, "unknown_task_type", "nodes[0] ('a').type"),
        (#"{"name":"w","nodes":[{"key":"a","type":"noop","delay":"5s"}]}"#, "invalid_workflow", "starts when its dependencies"),
        (#"{"name":"w","nodes":[{"key":"a","type":"noop","idempotency_key":"k"}]}"#, "invalid_workflow", "Idempotency-Key"),
        (#"{"name":"w","nodes":[{"key":"a","type":"noop","on_dependency_failure":"retry"}]}"#, "invalid_field", "on_dependency_failure"),
        (#"{"name":"w","chain":[{"type":"noop"},{"type":"noop","depends_on":["1"]}]}"#, "invalid_workflow", "chain[1].depends_on"),
        (#"{"name":"w","chain":[{"type":"noop","params":[1]}]}"#, "invalid_field", "chain[0] ('1').params"),
    ])
    func refusals(json: String, code: String, fragment: String) {
        let error = #expect(throws: APIError.self) { try parse(json) }
        #expect(error?.code == code, "\(json)")
        #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "") should name \(fragment)")
    }

    @Test("more than 10,000 nodes is refused before the graph is built")
    func tooLarge() {
        let nodes = (0...10_000).map { #"{"key":"n\#($0)","type":"noop"}"# }.joined(separator: ",")
        let error = #expect(throws: APIError.self) { try parse(#"{"name":"big","nodes":["# + nodes + "]}") }
        #expect(error?.code == "workflow_too_large")
    }
}
