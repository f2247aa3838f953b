import ConveyorConfiguration
import ConveyorCore
import ConveyorMetricNames
import ConveyorObservability
import Foundation
import Testing

@Suite("Documentation")
struct SettingsDocumentationTests {
    @Test("the configuration table of docs/configuration.md names every setting the CLI reads")
    func readmeNamesEverySetting() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        for setting in Settings.all {
            #expect(readme.contains("`\(setting.environmentVariable)`"), "docs/configuration.md lacks \(setting.environmentVariable)")
            if let flag = setting.flag {
                #expect(readme.contains("`\(flag)`"), "docs/configuration.md lacks \(flag)")
            }
        }
    }
}

@Suite("Metrics documentation")
struct MetricsDocumentationTests {
    @Test("the metrics table of docs/operations.md names every metric of the catalog")
    func readmeNamesEveryMetric() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("docs/operations.md"), encoding: .utf8)
        for entry in MetricsCatalog.all {
            #expect(readme.contains("| `\(entry.name)` |"), "docs/operations.md lacks \(entry.name)")
        }
    }
}
