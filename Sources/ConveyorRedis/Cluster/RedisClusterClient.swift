import Logging
import Synchronization

/// A Redis Cluster client: routes each command to the primary that owns its key's slot, one pipelining
/// ``RedisConnection`` per primary.
///
/// A batch stays a batch: its commands are split per node, each node's share goes as one pipeline (all
/// nodes at once), and the replies are put back in the batch's order. Commands of one slot keep their
/// order; commands of different slots never depended on each other's.
///
/// The slot map comes from `CLUSTER SLOTS`, asked of a known node (the configured ones, then any primary
/// seen). `MOVED` moves the slot in the map, retries there and reads the map again; `ASK` (a slot being
/// migrated) retries on the named node after `ASKING`, leaving the map as it is: at most
/// ``maxRedirects`` of those per command, then its reply is the last error. While the cluster settles
/// (`TRYAGAIN`, `CLUSTERDOWN`, `UNBLOCKED`, a slot no primary serves yet, a node that cannot be reached
/// because its primary died and a replica is taking over) commands wait ``settlePause`` and are
/// retried with the map read again, for up to the configuration's command timeout (as a frozen single
/// Redis fails a command after it); commands that were never sent are retried on the new owner,
/// commands that may have run fail with the connection's error, as on a single Redis.
public final class RedisClusterClient: RedisClient {
    public let configuration: RedisConfiguration
    private let name: String
    private let logger: Logger
    private let state = Mutex(State())
    /// Turns the slot that waits in a read over several slots.
    let readTurn = Atomic<Int>(0)

    /// Redirects (MOVED, ASK) one command may follow before its reply is the error itself. A
    /// migration needs one or two.
    public static let maxRedirects = 5
    /// The pause before retrying after `TRYAGAIN` or `CLUSTERDOWN`, or after an unreachable node, while
    /// the cluster settles.
    public static let settlePause = Duration.milliseconds(100)

    /// What following the cluster cost so far: the redirects taken and the map reads.
    public struct Statistics: Sendable, Hashable {
        public var moved = 0
        public var asked = 0
        /// Commands retried after TRYAGAIN, CLUSTERDOWN or an unreachable node.
        public var retried = 0
        /// Reads of the slot map (the first one included).
        public var mapReads = 0
    }

    public var statistics: Statistics { state.withLock { $0.statistics } }

    private struct State {
        var statistics = Statistics()
        var topology = ClusterTopology()
        /// Counts map reads, so that callers that saw the same stale map share one read.
        var version = 0
        var connections: [RedisNodeAddress: RedisConnection] = [:]
        var refresh: Task<Void, Never>?
        /// Why the last read of the map failed, for the callers that waited on it.
        var lastRefreshError: RedisError?
        var closed = false
    }

    public init(configuration: RedisConfiguration, name: String = "redis", logger: Logger) {
        precondition(configuration.isCluster, "a cluster client needs redis+cluster:// nodes")
        self.configuration = configuration
        self.name = name
        self.logger = logger
    }

    deinit { close() }

    public func close() {
        let connections = state.withLock { state in
            state.closed = true
            defer { state.connections = [:] }
            return Array(state.connections.values)
        }
        for connection in connections { connection.close() }
    }

    /// The slot map in use, read from the cluster first if it was never read.
    public func topology() async throws -> ClusterTopology {
        let (topology, version) = state.withLock { ($0.topology, $0.version) }
        if version > 0 { return topology }
        try await refreshTopology(seen: 0)
        return state.withLock { $0.topology }
    }

    /// The connection to one node (made on first use): for what must be asked of every primary, such as
    /// a SCAN of its keys.
    public func connection(to node: RedisNodeAddress) throws(RedisError) -> RedisConnection {
        try state.withLock { state throws(RedisError) in
            if state.closed { throw RedisError(.connectionClosed, "the cluster client was closed") }
            if let connection = state.connections[node] { return connection }
            let connection = RedisConnection(configuration: configuration.node(node), name: name, logger: logger)
            state.connections[node] = connection
            return connection
        }
    }

    // MARK: Sending

    /// One command of a batch on its way: where it is in the batch, and the redirects it followed.
    private struct Job: Sendable {
        var index: Int
        /// Set by an ASK: the node to ask once, after `ASKING`.
        var askNode: RedisNodeAddress?
        var redirects = 0
    }

    /// Replies that mean "the cluster is settling: ask again in a moment".
    private static func isSettling(_ message: String) -> Bool {
        message.hasPrefix("TRYAGAIN") || message.hasPrefix("CLUSTERDOWN") || message.hasPrefix("UNBLOCKED")
    }

    public func send(_ commands: [RedisCommand]) async throws -> [RedisReply] {
        guard !commands.isEmpty else { return [] }
        let settleDeadline = ContinuousClock.now + configuration.commandTimeout
        var topology = try await self.topology()
        var version = state.withLock { $0.version }
        var replies = [RedisReply?](repeating: nil, count: commands.count)
        var jobs: [Job] = []
        for index in commands.indices {
            // SCRIPT LOAD and the like go to every primary first (a script must be known before the
            // EVALSHA that follows it in the batch).
            if commands[index].route == .everyPrimary {
                replies[index] = try await broadcast(commands[index], to: topology.primaries)
            } else {
                jobs.append(Job(index: index))
            }
        }
        while !jobs.isEmpty {
            var byNode: [RedisNodeAddress: [Job]] = [:]
            var unserved: [Job] = []
            for job in jobs {
                if let node = job.askNode ?? node(for: commands[job.index], in: topology) {
                    byNode[node, default: []].append(job)
                } else {
                    unserved.append(job)
                }
            }
            let results = await withTaskGroup(of: (RedisNodeAddress, [Job], ShareOutcome).self) { group in
                for (node, share) in byNode {
                    group.addTask { (node, share, await self.sendShare(share, of: commands, to: node)) }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            // Commands to retry once the cluster has settled a moment, with the map read again.
            var settling: [Job] = unserved
            var lastSettlingError: (any Error)? = unserved.isEmpty ? nil : RedisError(.commandFailed, "CLUSTERDOWN Hash slot not served")
            jobs = []
            var refresh = !unserved.isEmpty
            for (node, share, outcome) in results {
                guard case .answered(let answered) = outcome else {
                    if case .unsent(let error) = outcome {
                        // Nothing was written: once the map is read again, retry where the slot lives then.
                        settling += share.map { job in
                            var job = job
                            job.askNode = nil
                            return job
                        }
                        lastSettlingError = error
                        refresh = true
                        continue
                    }
                    // The node went away mid-pipeline: these commands may have run, so they fail as on a
                    // single Redis. The map is read again for whoever sends next.
                    try? await refreshTopology(seen: version)
                    if case .broken(let error) = outcome { throw error }
                    continue
                }
                for position in share.indices {
                    let job = share[position]
                    let reply = answered[position]
                    var next = job
                    next.askNode = nil
                    guard case .error(let message) = reply else {
                        replies[job.index] = reply
                        continue
                    }
                    if let redirect = ClusterRedirect(reply), next.redirects < Self.maxRedirects {
                        next.redirects += 1
                        // An empty host in a redirect means the host of the node that answered.
                        let owner = redirect.node.host.isEmpty ? RedisNodeAddress(host: node.host, port: redirect.node.port) : redirect.node
                        switch redirect.kind {
                        case .moved:
                            topology.assign(slot: redirect.slot, to: owner)
                            state.withLock { state in
                                state.statistics.moved += 1
                                if state.version == version { state.topology.assign(slot: redirect.slot, to: owner) }
                            }
                            refresh = true
                        case .ask:
                            state.withLock { $0.statistics.asked += 1 }
                            next.askNode = owner
                        }
                        jobs.append(next)
                    } else if Self.isSettling(message), ContinuousClock.now < settleDeadline {
                        // A multi-key command during a migration, a cluster electing a new primary, a
                        // blocked read whose key moved away.
                        settling.append(next)
                        refresh = refresh || !message.hasPrefix("TRYAGAIN")
                    } else {
                        replies[job.index] = reply
                    }
                }
            }
            if !settling.isEmpty {
                if state.withLock({ $0.closed }) { throw RedisError(.connectionClosed, "the cluster client was closed") }
                guard ContinuousClock.now < settleDeadline else {
                    // Settling took longer than a command may: answer as a single Redis would.
                    if let error = lastSettlingError as? RedisError, error.code != RedisError.Code.commandFailed { throw error }
                    for job in settling { replies[job.index] = .error("CLUSTERDOWN the cluster did not settle within \(configuration.commandTimeout)") }
                    break
                }
                state.withLock { $0.statistics.retried += settling.count }
                jobs += settling
                try await Task.sleep(for: Self.settlePause)
            }
            if refresh, (try? await refreshTopology(seen: version)) != nil {
                (topology, version) = state.withLock { ($0.topology, $0.version) }
            }
        }
        return try replies.enumerated().map { index, reply throws(RedisError) in
            guard let reply else {
                throw RedisError(.unexpectedReply, "no reply routed back for command \(index) of \(commands.count)", command: commands[index].name)
            }
            return reply
        }
    }

    /// The primary a command goes to by its route.
    private func node(for command: RedisCommand, in topology: ClusterTopology) -> RedisNodeAddress? {
        switch command.route {
        case .slot(let slot): topology.owner(of: slot)
        case .anyPrimary, .everyPrimary: topology.primaries.first
        }
    }

    /// What one node did with its share of a batch. (An earlier form, a `let` set in one arm of a
    /// switch over `Result` whose other arms `continue` or `await`, crashed in release builds of Swift
    /// 6.3.1 with a bad pointer in the replies: keep each outcome a value of its own.)
    private enum ShareOutcome: Sendable {
        /// One reply per command, in order.
        case answered([RedisReply])
        /// Nothing was written: the node could not be reached.
        case unsent(RedisError)
        /// The node broke mid-pipeline: the commands may have run.
        case broken(any Error)
    }

    /// One node's share of a batch as one pipeline; an asked command goes after its `ASKING`.
    private func sendShare(_ share: [Job], of commands: [RedisCommand], to node: RedisNodeAddress) async -> ShareOutcome {
        do {
            let connection = try connection(to: node)
            guard share.contains(where: { $0.askNode != nil }) else {
                return .answered(try await connection.send(share.map { commands[$0.index] }))
            }
            var pipeline: [RedisCommand] = []
            var positions: [Int] = []
            for job in share {
                if job.askNode != nil { pipeline.append(RedisCommand("ASKING")) }
                positions.append(pipeline.count)
                pipeline.append(commands[job.index])
            }
            let replies = try await connection.send(pipeline)
            return .answered(positions.map { replies[$0] })
        } catch let error as RedisError where error.code == RedisError.Code.connectionFailed || error.code == RedisError.Code.connectionClosed {
            // Refused, or a connection a map read closed just now (a node no longer a primary): nothing
            // was written.
            return .unsent(error)
        } catch {
            return .broken(error)
        }
    }

    /// Sends a command to every primary and every other node this client talks to (an ASK target
    /// during a migration); the reply is the first error, else the first node's. A node that cannot be
    /// reached is skipped (a script is loaded there when it answers NOSCRIPT later), unless none could.
    private func broadcast(_ command: RedisCommand, to primaries: [RedisNodeAddress]) async throws -> RedisReply {
        let connected = state.withLock { Array($0.connections.keys) }
        var replies: [RedisReply] = []
        var failure: (any Error)?
        for node in primaries + connected.filter({ !primaries.contains($0) }).sorted() {
            do {
                replies.append(try await connection(to: node).send(command))
            } catch {
                failure = error
            }
        }
        if replies.isEmpty, let failure { throw failure }
        return replies.first { $0.errorMessage != nil } ?? replies.first ?? .error("CLUSTERDOWN no primary is known")
    }

    // MARK: The slot map

    /// Reads the slot map again, unless another caller already did since `seen` (then its map is used).
    /// Asks the primaries known, then the configured nodes, until one answers with a map that covers
    /// every slot (a partial map is taken only when no node has a whole one).
    /// - Throws: the last error when no node answered.
    func refreshTopology(seen: Int) async throws {
        let task: Task<Void, Never>? = state.withLock { state in
            if state.version != seen { return nil }
            if let running = state.refresh { return running }
            // Unstructured on purpose: callers that found the same stale map share this one read, and
            // it finishes even if the first of them is cancelled.
            let task = Task { await self.readTopology() }
            state.refresh = task
            return task
        }
        guard let task else { return }
        await task.value
        let (version, lastError) = state.withLock { ($0.version, $0.lastRefreshError) }
        if version == seen, let lastError { throw lastError }
    }

    private func readTopology() async {
        let (known, closed) = state.withLock { ($0.topology.primaries, $0.closed) }
        var candidates = known
        for node in configuration.clusterNodes where !candidates.contains(node) { candidates.append(node) }
        var best: ClusterTopology?
        var failure: RedisError?
        if !closed {
            for node in candidates {
                do {
                    let reply = try await connection(to: node).send(RedisCommand("CLUSTER", ["SLOTS"]))
                    let topology = try ClusterTopology(clusterSlots: reply, answeredBy: node)
                    if best == nil || topology.uncoveredSlots < best!.uncoveredSlots { best = topology }
                    if topology.uncoveredSlots == 0 { break }
                } catch let error as RedisError {
                    failure = error
                } catch {
                    failure = RedisError(.unexpectedReply, "\(error)", command: "CLUSTER SLOTS")
                }
            }
        }
        let stale: [RedisConnection] = state.withLock { state in
            state.refresh = nil
            guard let best else {
                state.lastRefreshError = failure ?? RedisError(.connectionFailed, "no cluster node answered CLUSTER SLOTS")
                return []
            }
            let changed = best != state.topology
            state.topology = best
            state.version += 1
            state.statistics.mapReads += 1
            state.lastRefreshError = nil
            // Connections to nodes that are no longer primaries (a replaced primary, a removed node)
            // are closed, except the configured ones, which the next read of the map may ask again.
            let keep = Set(best.primaries).union(configuration.clusterNodes)
            let gone = state.connections.keys.filter { !keep.contains($0) }
            if changed && state.version > 1 {
                logger.info("Redis Cluster map changed", metadata: ["primaries": "\(best.primaries.map(\.description).joined(separator: ","))"])
            }
            return gone.compactMap { state.connections.removeValue(forKey: $0) }
        }
        for connection in stale { connection.close() }
    }
}
