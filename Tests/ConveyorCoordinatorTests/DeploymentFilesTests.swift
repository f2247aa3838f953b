import ConveyorConfiguration
import ConveyorCore
import ConveyorMetricNames
import ConveyorObservability
import Foundation
import Testing
import Yams

/// docker-compose.yml, the Prometheus configuration and the Grafana files cannot run here (no Docker):
/// these tests check that they parse and agree with each other, with the docs and with the metrics
/// Conveyor really exports.
@Suite("Deployment files")
struct DeploymentFilesTests {
    private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    private func text(_ path: String) throws -> String {
        try String(contentsOf: Self.root.appendingPathComponent(path), encoding: .utf8)
    }

    private func compose() throws -> [String: Any] {
        try #require(try Yams.load(yaml: try text("docker-compose.yml")) as? [String: Any])
    }

    @Test("docker-compose.yml parses, uses only documented settings, and publishes the documented ports")
    func composeAgreesWithTheDocs() throws {
        let services = try #require(try compose()["services"] as? [String: Any])
        for name in ["redis", "postgres", "coordinator", "agent-1", "agent-2", "prometheus", "loki", "promtail", "grafana"] {
            #expect(services[name] != nil, "docker-compose.yml lacks \(name)")
        }
        let operations = try text("docs/operations.md")
        #expect(operations.contains("docker compose up"))
        let known = Set(Settings.all.map(\.environmentVariable))
        for (name, service) in services {
            let environment = (service as? [String: Any])?["environment"] as? [String: Any] ?? [:]
            for key in environment.keys where key.hasPrefix("CONVEYOR_") {
                #expect(known.contains(key), "\(name) sets \(key), which is not a Conveyor setting")
            }
        }
        let coordinator = try #require(services["coordinator"] as? [String: Any])
        let environment = try #require(coordinator["environment"] as? [String: Any])
        #expect("\(environment["CONVEYOR_HTTP_PORT"] ?? "")" == Settings.httpPort.defaultValue)
        #expect((coordinator["ports"] as? [String])?.contains("8080:8080") == true)
    }

    @Test("Prometheus scrapes the compose services on their ports, under the job names the alerts use")
    func prometheusTargetsExist() throws {
        let config = try #require(try Yams.load(yaml: try text("Grafana/prometheus/prometheus.yml")) as? [String: Any])
        let services = try #require(try compose()["services"] as? [String: Any])
        let jobs = try #require(config["scrape_configs"] as? [[String: Any]])
        #expect(Set(jobs.compactMap { $0["job_name"] as? String }) == ["conveyor-coordinator", "conveyor-agent"])
        for job in jobs {
            for staticConfig in job["static_configs"] as? [[String: Any]] ?? [] {
                for target in staticConfig["targets"] as? [String] ?? [] {
                    let parts = target.split(separator: ":")
                    let service = try #require(services[String(parts[0])] as? [String: Any], "no service \(parts[0])")
                    let environment = service["environment"] as? [String: Any] ?? [:]
                    let port = "\(environment["CONVEYOR_HTTP_PORT"] ?? environment["CONVEYOR_METRICS_PORT"] ?? "")"
                    #expect(port == String(parts[1]), "\(target) does not match the service's port \(port)")
                }
            }
        }
    }

    @Test("the dashboards parse, use the provisioned data sources, and query only exported metrics")
    func dashboardsUseExportedMetrics() throws {
        let sources = try #require(try Yams.load(yaml: try text("Grafana/provisioning/datasources/datasources.yml")) as? [String: Any])
        let uids = Set((sources["datasources"] as? [[String: Any]] ?? []).compactMap { $0["uid"] as? String })
        #expect(uids == ["prometheus", "loki"])
        let exported = Set(MetricsCatalog.all.map(\.name))
        for file in ["conveyor-overview.json", "conveyor-task-logs.json"] {
            let data = try Data(contentsOf: Self.root.appendingPathComponent("Grafana/dashboards/\(file)"))
            let dashboard = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            let panels = try #require(dashboard["panels"] as? [[String: Any]])
            #expect(!panels.isEmpty)
            for panel in panels {
                let uid = (panel["datasource"] as? [String: Any])?["uid"] as? String
                #expect(uid.map(uids.contains) == true, "\(file): panel \(panel["title"] ?? "") uses an unknown data source")
                guard uid == "prometheus" else { continue }
                for target in panel["targets"] as? [[String: Any]] ?? [] {
                    let expr = try #require(target["expr"] as? String)
                    for name in Self.metricNames(in: expr) {
                        #expect(exported.contains(name), "\(file): \(name) is not exported (in \(expr))")
                    }
                }
            }
        }
    }

    /// The metric names an expression reads, with histogram suffixes removed.
    static func metricNames(in expr: String) -> Set<String> {
        let pattern = try! NSRegularExpression(pattern: "\\b(conveyor_[a-z_]+|process_[a-z_]+)")
        let range = NSRange(expr.startIndex..., in: expr)
        return Set(pattern.matches(in: expr, range: range).compactMap { match -> String? in
            guard let range = Range(match.range, in: expr) else { return nil }
            var name = String(expr[range])
            for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) && !name.hasSuffix("_total") {
                name = String(name.dropLast(suffix.count))
            }
            return name
        })
    }
}
