import ConveyorConfiguration
import ConveyorCore
import ConveyorMetricNames
import ConveyorObservability
import Foundation
import Testing

@Suite("Documentation")
struct SettingsDocumentationTests {
    @Test("the README's configuration table names every setting the CLI reads")
    func readmeNamesEverySetting() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        for setting in Settings.all {
            #expect(readme.contains("`\(setting.environmentVariable)`"), "README lacks \(setting.environmentVariable)")
            if let flag = setting.flag {
                #expect(readme.contains("`\(flag)`"), "README lacks \(flag)")
            }
        }
    }
}

@Suite("Metrics documentation")
struct MetricsDocumentationTests {
    @Test("the README's metrics table names every metric of the catalog")
    func readmeNamesEveryMetric() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        for entry in MetricsCatalog.all {
            #expect(readme.contains("| `\(entry.name)` |"), "README lacks \(entry.name)")
        }
    }
}
