import ConveyorTesting
import Foundation
import Testing

/// The Prometheus files in Grafana/ checked by Prometheus' own tool.
@Suite("Prometheus rules and configuration")
struct AlertRulesTests {
    private static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Grafana/prometheus")

    private func promtool(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await ToolRun.run(["promtool"] + arguments, in: Self.directory)
    }

    @Test("the alert rules are valid (promtool check rules)")
    func rulesAreValid() async throws {
        let result = try await promtool(["check", "rules", "alerts.yml"])
        #expect(result.status == 0, "\(result.output)")
    }

    @Test("every alert has a unit test, and they pass (promtool test rules)")
    func rulesPassTheirTests() async throws {
        let result = try await promtool(["test", "rules", "alerts.test.yml"])
        #expect(result.status == 0, "\(result.output)")
        let rules = try String(contentsOf: Self.directory.appendingPathComponent("alerts.yml"), encoding: .utf8)
        let tests = try String(contentsOf: Self.directory.appendingPathComponent("alerts.test.yml"), encoding: .utf8)
        let alerts = rules.split(separator: "\n").compactMap { line -> String? in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            return trimmed.hasPrefix("- alert: ") ? String(trimmed.dropFirst("- alert: ".count)) : nil
        }
        #expect(alerts.count >= 7)
        for alert in alerts {
            #expect(tests.contains("alertname: \(alert)"), "no unit test for \(alert)")
        }
    }

    @Test("the scrape configuration is valid (promtool check config)")
    func configIsValid() async throws {
        let result = try await promtool(["check", "config", "prometheus.yml"])
        #expect(result.status == 0, "\(result.output)")
    }
}
