import Foundation
import Subprocess
#if canImport(System)
import System
#else
import SystemPackage
#endif

/// Runs a command-line tool found on PATH (promtool, gzip) and returns its exit status and output,
/// stdout then stderr; `input` goes to its stdin.
///
/// Through swift-subprocess, as every other child of the tests: Foundation's `Process.run()` crashed
/// the test process twice in a full run (a bad pointer in a `memcpy` inside it, while dozens of other
/// tests held connections and children open).
public enum ToolRun {
    public static func run(_ arguments: [String], input: [UInt8]? = nil, in directory: URL? = nil) async throws -> (status: Int32, output: String) {
        guard let tool = arguments.first else { return (-1, "no tool given") }
        let result = try await Subprocess.run(
            tool.contains("/") ? .path(FilePath(tool)) : .name(tool), arguments: Arguments(Array(arguments.dropFirst())),
            workingDirectory: directory.map { FilePath($0.path) },
            input: .array(input ?? []), output: .string(limit: 16 << 20), error: .string(limit: 16 << 20))
        let status: Int32
        switch result.terminationStatus {
        case .exited(let code): status = Int32(code)
        case .signaled(let signal): status = 128 + Int32(signal)
        }
        return (status, result.standardOutput + result.standardError)
    }
}
