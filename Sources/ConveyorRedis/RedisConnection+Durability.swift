extension RedisClient {
    /// What in the server's configuration puts tasks at risk (DESIGN §2, pitfall 8): an eviction policy
    /// other than `noeviction` lets Redis drop stream entries under memory pressure, and without AOF a
    /// restart loses everything not yet recorded (the Reconciler then re-dispatches from PostgreSQL, but
    /// in-flight outcomes are lost and run again).
    ///
    /// Empty when all is well, or when the server does not allow CONFIG GET (some managed services):
    /// then nothing can be said, and nothing is claimed.
    public func durabilityWarnings() async -> [String] {
        guard let cluster = self as? RedisClusterClient else { return await Self.durabilityWarnings(of: self) }
        // Every primary has its own configuration: each is asked, and named in its warnings.
        guard let primaries = try? await cluster.topology().primaries else { return [] }
        var warnings: [String] = []
        for node in primaries {
            guard let connection = try? cluster.connection(to: node) else { continue }
            warnings += await Self.durabilityWarnings(of: connection).map { "\(node): \($0)" }
        }
        return warnings
    }

    private static func durabilityWarnings(of redis: some RedisClient) async -> [String] {
        guard let replies = try? await redis.send([
            RedisCommand("CONFIG", ["GET", "maxmemory-policy"]),
            RedisCommand("CONFIG", ["GET", "appendonly"]),
        ]) else { return [] }
        func value(_ reply: RedisReply) -> String? {
            guard let pair = reply.array, pair.count == 2 else { return nil }
            return pair[1].string
        }
        var warnings: [String] = []
        if let policy = value(replies[0]), policy != "noeviction" {
            warnings.append("Redis maxmemory-policy is '\(policy)': set it to noeviction, or Redis may evict queued tasks under memory pressure")
        }
        if let appendOnly = value(replies[1]), appendOnly != "yes" {
            warnings.append("Redis runs without AOF (appendonly \(appendOnly)): a Redis restart loses queued work until the Reconciler re-dispatches it, and in-flight outcomes")
        }
        return warnings
    }
}
