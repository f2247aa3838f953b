/// A node of a Redis Cluster, as the cluster names it.
public struct RedisNodeAddress: Sendable, Hashable, CustomStringConvertible, Comparable {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` (the form of MOVED and ASK replies and of cluster URLs). The host may be empty
    /// in a redirect: the node that answered then means itself.
    public init?(_ text: some StringProtocol) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (1...65535).contains(port)
        else { return nil }
        self.init(host: String(text[..<colon]), port: port)
    }

    public var description: String { "\(host):\(port)" }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.host, lhs.port) < (rhs.host, rhs.port)
    }
}

/// Which primary owns each of the 16,384 slots: the map a cluster client routes by.
public struct ClusterTopology: Sendable, Hashable {
    /// The primaries, sorted; ``owner(of:)`` indexes into it.
    public private(set) var primaries: [RedisNodeAddress]
    /// Per slot, the index of its primary in ``primaries``, or -1 while no node serves it.
    private var owners: [Int16]

    public init(primaries: [RedisNodeAddress] = [], owners: [Int16] = Array(repeating: -1, count: HashSlot.count)) {
        self.primaries = primaries
        self.owners = owners
    }

    /// The primary serving a slot, if any.
    public func owner(of slot: Int) -> RedisNodeAddress? {
        let index = Int(owners[slot])
        return index >= 0 ? primaries[index] : nil
    }

    /// How many slots have no primary (a cluster being set up, or a shard lost without a replica).
    public var uncoveredSlots: Int { owners.reduce(0) { $0 + ($1 < 0 ? 1 : 0) } }

    /// Moves one slot to another primary, as a MOVED reply says it now lives there; the full map is
    /// read again right after, but the command that was moved can be retried at once.
    public mutating func assign(slot: Int, to node: RedisNodeAddress) {
        if let index = primaries.firstIndex(of: node) {
            owners[slot] = Int16(index)
        } else {
            primaries.append(node)
            owners[slot] = Int16(primaries.count - 1)
        }
    }

    /// Reads a `CLUSTER SLOTS` reply: `[[start, end, [host, port, id…], [replica…]…]…]`. An empty or NULL
    /// host means the node that answered (Redis' convention), which is `answeredBy`'s.
    public init(clusterSlots reply: RedisReply, answeredBy: RedisNodeAddress) throws(RedisError) {
        guard let ranges = reply.array else {
            throw RedisError(.unexpectedReply, "CLUSTER SLOTS: \(reply.errorMessage ?? "not an array")", command: "CLUSTER SLOTS")
        }
        var primaries: [RedisNodeAddress] = []
        var assignments: [(ClosedRange<Int>, RedisNodeAddress)] = []
        for range in ranges {
            guard let fields = range.array, fields.count >= 3, let start = fields[0].integer, let end = fields[1].integer,
                0 <= start, start <= end, end < HashSlot.count, let node = fields[2].array, node.count >= 2,
                let port = node[1].integer
            else {
                throw RedisError(.unexpectedReply, "CLUSTER SLOTS: a slot range is malformed", command: "CLUSTER SLOTS")
            }
            // A NULL or empty endpoint means the node that answered; `?` an endpoint the node does not
            // know: those slots stay without a primary until a map read from another node names it.
            let host = node[0].isNull ? "" : node[0].string ?? ""
            if host == "?" { continue }
            let address = RedisNodeAddress(host: host.isEmpty ? answeredBy.host : host, port: Int(port))
            if !primaries.contains(address) { primaries.append(address) }
            assignments.append((Int(start)...Int(end), address))
        }
        primaries.sort()
        var owners = [Int16](repeating: -1, count: HashSlot.count)
        for (range, address) in assignments {
            let index = Int16(primaries.firstIndex(of: address)!)
            for slot in range { owners[slot] = index }
        }
        self.init(primaries: primaries, owners: owners)
    }
}

/// A cluster's answer that a key lives elsewhere: `MOVED slot host:port` (for good: read the map
/// again) or `ASK slot host:port` (while the slot migrates: ask there once, after `ASKING`).
public struct ClusterRedirect: Sendable, Hashable {
    public enum Kind: Sendable, Hashable { case moved, ask }
    public var kind: Kind
    public var slot: Int
    public var node: RedisNodeAddress

    public init?(_ reply: RedisReply) {
        guard let message = reply.errorMessage else { return nil }
        let parts = message.split(separator: " ")
        guard parts.count == 3, let slot = Int(parts[1]), (0..<HashSlot.count).contains(slot),
            let node = RedisNodeAddress(parts[2])
        else { return nil }
        switch parts[0] {
        case "MOVED": kind = .moved
        case "ASK": kind = .ask
        default: return nil
        }
        self.slot = slot
        self.node = node
    }
}
