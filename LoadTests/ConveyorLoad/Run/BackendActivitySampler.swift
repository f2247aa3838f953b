import ConveyorCore
import ConveyorPostgres
import ConveyorRedis
import Foundation
import Synchronization

/// Watches the embedded stack's Redis and PostgreSQL for the background work that has coincided with
/// slow seconds on this machine (docs/performance.md, "A fifth step" and "A sixteenth step"): Redis
/// forking to rewrite its AOF, an autovacuum worker at work, and retention opening or dropping a
/// generation of partitions. Four times a second, because an ANALYZE of a partition takes
/// 0.1–0.35 s and a once-a-second look would miss most of them. Its queries count in PostgreSQL's CPU,
/// so it runs for open-loop runs only, never at the ceiling.
final class BackendActivitySampler: Sendable {
    private let stack: LoadStack
    private let interval: Duration
    /// (wall clock milliseconds, what was seen then).
    private let seen = Mutex<[(Int64, SlowSeconds.Cause)]>([])

    init(stack: LoadStack, interval: Duration = .milliseconds(250)) {
        self.stack = stack
        self.interval = interval
    }

    /// What was seen, in order.
    var activity: [(Int64, SlowSeconds.Cause)] { seen.withLock { $0 } }

    /// Samples until cancelled.
    func run() async {
        await stack.withSamplingClients(name: "load-activity") { redis, postgres in
            await sample(redis: redis, postgres: postgres)
        }
    }

    private func sample(redis: (any RedisClient)?, postgres: PostgresConnection) async {
        var forks: Int64?
        while !Task.isCancelled {
            let now = WallClock.nowMillis()
            if let redis, let replies = try? await redis.send([RedisCommand("INFO", ["persistence"]), RedisCommand("INFO", ["stats"])]) {
                let fields = Self.infoFields(replies.compactMap(\.string).joined(separator: "\n"))
                let count = Int64(fields["total_forks"] ?? "") ?? forks
                // A fork started since the last look, or a rewrite or save still running in its child.
                if (count != nil && forks != nil && count != forks) || fields["aof_rewrite_in_progress"] == "1" || fields["rdb_bgsave_in_progress"] == "1" {
                    record(now, .redisFork)
                }
                forks = count
            }
            let counts = try? await postgres.withSession { session in
                try session.query(Self.backendsQuery, name: "background backends").rows.first
            }
            if let counts, counts.count == 2 {
                if let workers = counts[0].flatMap({ Int($0) }), workers > 0 { record(now, .autovacuum) }
                if let changes = counts[1].flatMap({ Int($0) }), changes > 0 { record(now, .partitionChange) }
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// Autovacuum workers, and backends running (or waiting for the locks of) a generation's open or drop
    /// (a detach since migration 11; the drop of an earlier coordinator): the coordinator's retention
    /// calls these functions, each as one statement. The patterns are anchored at the statement's start:
    /// this query names the functions too, and must not count itself.
    static let backendsQuery = """
        SELECT count(*) FILTER (WHERE backend_type = 'autovacuum worker'),
               count(*) FILTER (WHERE state = 'active'
                                  AND (query LIKE 'SELECT conveyor\\_detach\\_generation(%' OR query LIKE 'SELECT conveyor\\_drop\\_generation(%'
                                       OR query LIKE 'SELECT conveyor\\_open\\_generation(%'))
        FROM pg_stat_activity
        """

    private func record(_ at: Int64, _ cause: SlowSeconds.Cause) {
        seen.withLock { $0.append((at, cause)) }
    }

    /// `INFO`'s `name:value` lines, section headers (`# Stats`) skipped.
    static func infoFields(_ info: String) -> [String: String] {
        var fields: [String: String] = [:]
        for line in info.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":"), !line.hasPrefix("#") else { continue }
            fields[String(line[..<colon])] = String(line[line.index(after: colon)...])
        }
        return fields
    }
}
