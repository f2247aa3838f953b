import ConveyorPostgres
import ConveyorRedis
import Foundation
import Synchronization

/// Samples what must not grow during a soak, every few seconds: Redis' `used_memory`, the PostgreSQL
/// database's size, each process's resident memory and PostgreSQL's private memory (see
/// ``ProcessSampler/growthMiB(of:)``); then reports each series' slope after the
/// warm-up (least squares, MiB per minute), which is how "flat" is judged.
final class GrowthSampler: Sendable {
    struct Series: Sendable {
        var name: String
        /// (seconds since the start, MiB).
        var points: [[Double]]
    }

    /// One series' growth after the warm-up.
    struct Growth: Sendable, Codable {
        var name: String
        var firstMiB: Double
        var lastMiB: Double
        var slopeMiBPerMinute: Double
        /// Flat: growing by less than 1 MiB a minute, or by less than 1 % of its size a minute.
        var flat: Bool
    }

    private let stack: LoadStack
    private let interval: Duration
    /// In the order each series was first sampled.
    private let series = Mutex<[Series]>([])

    init(stack: LoadStack, interval: Duration = .seconds(5)) {
        self.stack = stack
        self.interval = interval
    }

    /// Samples until cancelled.
    func run() async {
        let start = ContinuousClock.now
        await stack.withSamplingClients(name: "load-growth") { redis, postgres in
            await sample(redis: redis, postgres: postgres, since: start)
        }
    }

    private func sample(redis: (any RedisClient)?, postgres: PostgresConnection, since start: ContinuousClock.Instant) async {
        while !Task.isCancelled {
            let at = (ContinuousClock.now - start).seconds
            if let redis, let info = try? await redis.send(RedisCommand("INFO", ["memory"])).string,
               let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("used_memory:") }),
               let bytes = Double(line.dropFirst("used_memory:".count)) {
                record("redis used_memory", at: at, mib: bytes / 1_048_576)
            }
            let size = try? await postgres.withSession { session in
                try session.query("SELECT pg_database_size(current_database())", name: "database size").rows.first?[0] ?? nil
            }
            if let size, let bytes = Double(size) {
                record("postgres database size", at: at, mib: bytes / 1_048_576)
            }
            for process in stack.watched where process.name != "conveyor-load" {
                let name = process.includeChildren ? "postgres private memory" : process.name + " memory"
                if let mib = ProcessSampler.growthMiB(of: process) { record(name, at: at, mib: mib) }
            }
            try? await Task.sleep(for: interval)
        }
    }

    private func record(_ name: String, at seconds: Double, mib: Double) {
        series.withLock { series in
            if let index = series.firstIndex(where: { $0.name == name }) {
                series[index].points.append([seconds, mib])
            } else {
                series.append(Series(name: name, points: [[seconds, mib]]))
            }
        }
    }

    /// The growth of every series over the samples taken after `warmUp` seconds.
    func growth(after warmUp: Double) -> [Growth] {
        series.withLock { $0 }.compactMap { series in
            let name = series.name
            let points = series.points.filter { $0[0] >= warmUp }
            guard points.count >= 3 else { return nil }
            let slope = Self.slope(points) * 60
            let last = points[points.count - 1][1]
            return Growth(name: name, firstMiB: points[0][1], lastMiB: last, slopeMiBPerMinute: slope, flat: slope < 1 || slope < last * 0.01)
        }
    }

    /// Least-squares slope of y over x.
    static func slope(_ points: [[Double]]) -> Double {
        let n = Double(points.count)
        let meanX = points.reduce(0) { $0 + $1[0] } / n
        let meanY = points.reduce(0) { $0 + $1[1] } / n
        let covariance = points.reduce(0) { $0 + ($1[0] - meanX) * ($1[1] - meanY) }
        let variance = points.reduce(0) { $0 + ($1[0] - meanX) * ($1[0] - meanX) }
        return variance > 0 ? covariance / variance : 0
    }
}
