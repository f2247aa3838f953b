import ConveyorConfiguration
import ConveyorCore
import Foundation
import Testing

/// A class, so that each test's scripts are removed when its instance goes away.
@Suite("The command handler")
final class CommandHandlerTests {
    private var scripts: [String] = []

    deinit {
        for path in scripts { try? FileManager.default.removeItem(atPath: path) }
    }

    /// Writes an executable shell script to a temp file.
    private func script(_ body: String) throws -> String {
        let path = NSTemporaryDirectory() + "conveyor-cmd-\(UUID().uuidString).sh"
        try ("#!/bin/sh\n" + body + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
        scripts.append(path)
        return path
    }

    private func registry(
        _ types: [String: String], maxAttempts: Int = 3, timeout: String = "10s", maxOutput: Int = 1024, env: String = ""
    ) throws -> TaskTypeRegistry {
        var yaml = "types:\n"
        for (name, path) in types.sorted(by: { $0.key < $1.key }) {
            // Through /bin/sh rather than exec'ing the script itself: a script just written can be
            // "text file busy" while a process spawned concurrently by another test still holds its fd.
            yaml += "  \(name):\n    handler: command\n    command: [\"/bin/sh\", \"\(path)\"]\n    max_attempts: \(maxAttempts)\n    timeout: \(timeout)\n    max_output_bytes: \(maxOutput)\n"
            if !env.isEmpty { yaml += "    env:\n" + env }
        }
        return try TaskTypeRegistry(yaml: yaml, source: "test.yaml")
    }

    @Test("a workflow node reads its dependencies' results from the file CONVEYOR_DEPENDENCIES_FILE names")
    func dependenciesFile() async throws {
        let path = try script(#"if [ -n "$CONVEYOR_DEPENDENCIES_FILE" ]; then cat "$CONVEYOR_DEPENDENCIES_FILE"; else echo '{"root":true}'; fi"#)
        let stack = try await Stack.start(registry: try registry(["shell": path]))
        let reply = try await stack.post("/v1/workflows", #"{"name":"files","chain":[{"key":"a","type":"shell","params":{}},{"key":"b","type":"shell","params":{}}]}"#)
        let a = try #require(reply.json?["nodes"]?["a"]?.intValue)
        let b = try #require(reply.json?["nodes"]?["b"]?.intValue)
        #expect(try await stack.waitUntilTerminal([a, b]) == [a: .succeeded, b: .succeeded])
        let result = try await stack.task(b)["result"]
        #expect(result?["a"]?["result"]?["root"] == .bool(true))
        #expect(result?["a"]?["status"]?.stringValue == "succeeded")
        try await stack.stop()
    }

    @Test("JSON on stdout becomes the result; the task's id, type, attempt, correlation id and params arrive in the environment")
    func resultAndEnvironment() async throws {
        let path = try script(#"printf '{"id":"%s","type":"%s","attempt":%s,"cid":"%s","payload":%s}' "$TASK_ID" "$TASK_TYPE" "$TASK_ATTEMPT" "$CORRELATION_ID" "$PAYLOAD_JSON""#)
        let stack = try await Stack.start(registry: try registry(["shell": path]))
        let reply = try await stack.post("/v1/tasks", "{\"type\":\"shell\",\"params\":{\"x\":[1,2]}}", headers: [("X-Correlation-ID", "cmd-corr")])
        let id = try #require(reply.json?["id"]?.intValue)
        #expect(try await stack.waitUntilTerminal([id])[id] == .succeeded)
        let result = try await stack.task(id)["result"]
        #expect(result?["id"]?.stringValue == String(id))
        #expect(result?["type"]?.stringValue == "shell")
        #expect(result?["attempt"]?.intValue == 1)
        #expect(result?["cid"]?.stringValue == "cmd-corr")
        #expect(result?["payload"] == .object(["x": .array([.integer(1), .integer(2)])]))
        try await stack.stop()
    }

    @Test("a non-zero exit fails the attempt with stderr's tail, and is retried up to max_attempts")
    func failureCarriesStderr() async throws {
        let path = try script("echo 'something broke: disk full' >&2\nexit 3")
        let stack = try await Stack.start(registry: try registry(["broken": path], maxAttempts: 2))
        let id = try await stack.submit("broken")
        #expect(try await stack.waitUntilTerminal([id])[id] == .dead)
        let task = try await stack.task(id)
        #expect(task["attempts"]?.intValue == 2)
        #expect(task["error"]?.stringValue?.contains("exit code 3") == true)
        #expect(task["error"]?.stringValue?.contains("something broke: disk full") == true)
        try await stack.stop()
    }

    @Test("exit code 65 fails permanently: no retry")
    func permanentFailure() async throws {
        let path = try script("echo 'bad input' >&2\nexit 65")
        let stack = try await Stack.start(registry: try registry(["picky": path], maxAttempts: 5))
        let id = try await stack.submit("picky")
        #expect(try await stack.waitUntilTerminal([id])[id] == .dead)
        #expect(try await stack.task(id)["attempts"]?.intValue == 1)
        try await stack.stop()
    }

    @Test("stdout that is not JSON, or larger than max_output_bytes, fails the task")
    func badOutput() async throws {
        let notJSON = try script("echo 'hello there'")
        let tooBig = try script("yes a | head -c 5000")
        let stack = try await Stack.start(registry: try registry(["chatty": notJSON, "verbose": tooBig], maxAttempts: 1))
        let a = try await stack.submit("chatty")
        let b = try await stack.submit("verbose")
        let statuses = try await stack.waitUntilTerminal([a, b])
        #expect(statuses[a] == .dead)
        #expect(statuses[b] == .dead)
        #expect(try await stack.task(a)["error"]?.stringValue?.contains("not JSON") == true)
        #expect(try await stack.task(b)["error"]?.stringValue?.contains("max_output_bytes") == true)
        try await stack.stop()
    }

    @Test("a command running past its timeout is stopped and the attempt fails")
    func timeoutStopsTheCommand() async throws {
        let path = try script("sleep 30")
        let stack = try await Stack.start(registry: try registry(["stuck": path], maxAttempts: 1, timeout: "500ms"))
        let id = try await stack.submit("stuck")
        #expect(try await stack.waitUntilTerminal([id], timeout: .seconds(20))[id] == .dead)
        #expect(try await stack.task(id)["error"]?.stringValue?.contains("timed out") == true)
        try await stack.stop()
    }

    @Test("the command sees only PATH, HOME, LANG, the task's variables and its type's env, never the agent's secrets")
    func allowlistedEnvironment() async throws {
        // No setenv here: it races with every other test that starts a process (Foundation's Process
        // copies `environ` while another thread reallocates it: the suite crashed once so). The exact set
        // of names below already proves that none of this process' own variables reach the command.
        let path = try script(#"env | cut -d= -f1 | sort | tr '\n' ' ' | sed 's/^/{"names":"/; s/ $/"}/'"#)
        let stack = try await Stack.start(registry: try registry(["env": path], env: "      REGION: eu-1\n"))
        let id = try await stack.submit("env")
        #expect(try await stack.waitUntilTerminal([id])[id] == .succeeded)
        let names = try #require(try await stack.task(id)["result"]?["names"]?.stringValue).split(separator: " ").map(String.init)
        #expect(!names.contains("CONVEYOR_TEST_AGENT_SECRET") && !names.contains("USER") && !names.contains("HOSTNAME"))
        #expect(Set(names).subtracting(["PATH", "HOME", "LANG", "PWD", "SHLVL", "_"]) == [
            "TASK_ID", "TASK_TYPE", "TASK_ATTEMPT", "TASK_MAX_ATTEMPTS", "CORRELATION_ID", "PAYLOAD_FILE", "PAYLOAD_JSON",
            "CONVEYOR_PROGRESS_FILE", "REGION",
        ])
        try await stack.stop()
    }

    @Test("params far larger than the environment allows arrive on stdin and in PAYLOAD_FILE; PAYLOAD_JSON is left out")
    func largePayloadOnStdin() async throws {
        let path = try script(#"""
            bytes=$(wc -c < /dev/stdin)
            file=$(wc -c < "$PAYLOAD_FILE")
            printf '{"stdin":%s,"file":%s,"env":%s}' "$bytes" "$file" "${#PAYLOAD_JSON}"
            """#)
        let stack = try await Stack.start(registry: try registry(["big": path]))
        let blob = String(repeating: "x", count: 600_000)
        let id = try await stack.submit("big", params: "{\"blob\":\"\(blob)\"}")
        #expect(try await stack.waitUntilTerminal([id])[id] == .succeeded)
        let result = try await stack.task(id)["result"]
        let expected = "{\"blob\":\"\(blob)\"}".utf8.count
        #expect(result?["stdin"]?.intValue == Int64(expected))
        #expect(result?["file"]?.intValue == Int64(expected))
        #expect(result?["env"]?.intValue == 0)
        try await stack.stop()
    }
}
