import ConveyorPostgres
import ConveyorRedis
import Logging

extension LoadStack {
    /// Runs `body` with clients of the stack's own Redis (nil when it uses one it did not start) and
    /// PostgreSQL, for the samplers that watch them during a run; closes both when `body` returns.
    func withSamplingClients(name: String, _ body: (_ redis: (any RedisClient)?, _ postgres: PostgresConnection) async -> Void) async {
        let quiet = Logger(label: "conveyor.load", factory: { _ in SwiftLogNoOpLogHandler() })
        let redis = self.redis.flatMap { try? RedisConfiguration(url: $0.url) }.map { RedisClients.make($0, name: name, logger: quiet) }
        let postgres = PostgresConnection(url: self.postgres.url, name: name, logger: quiet)
        defer {
            redis?.close()
            postgres.close()
        }
        await body(redis, postgres)
    }
}
