import Synchronization

extension RedisClusterClient {
    /// How long a read over several slots waits on each node when nothing is there.
    ///
    /// A cluster refuses one XREADGROUP over keys of several slots (CROSSSLOT), and a blocking command
    /// holds its node's connection: so a read over several queues sends one XREADGROUP per slot, of
    /// which only one per node waits, and only this long; the next read waits on the next slot. Work
    /// arriving in any slot is found within about this time, and an idle reader costs one round trip
    /// per node this often.
    public static let crossSlotWait = Duration.milliseconds(20)

    /// XREADGROUP over streams of several slots: one command per slot, all in one batch (one pipeline
    /// per node); the results merged in the order of `streams`. COUNT stays per stream, as in one
    /// XREADGROUP.
    public func readGroupAcrossSlots(
        group: String, consumer: String, streams: [String], id: String, count: Int, block: Duration?
    ) async throws -> [(stream: String, entries: [StreamEntry])] {
        var slots: [Int] = []
        var bySlot: [Int: [String]] = [:]
        for stream in streams {
            let slot = HashSlot.of(stream)
            if bySlot[slot] == nil { slots.append(slot) }
            bySlot[slot, default: []].append(stream)
        }
        if slots.count == 1 {
            return try Self.decodeRead(try await send(Self.xreadgroup(group: group, consumer: consumer, streams: streams, id: id, count: count, block: block)), command: "XREADGROUP")
        }
        let topology = try await self.topology()
        // Which slot waits on each node turns with every read, so that every slot gets its turn.
        let turn = readTurn.wrappingAdd(1, ordering: .relaxed).oldValue
        let rotated = slots.indices.map { slots[($0 + turn) % slots.count] }
        var waiting = Set<RedisNodeAddress>()
        let commands = rotated.map { slot in
            let waits = block != nil && topology.owner(of: slot).map { waiting.insert($0).inserted } == true
            return Self.xreadgroup(
                group: group, consumer: consumer, streams: bySlot[slot]!, id: id, count: count,
                block: waits ? min(block!, Self.crossSlotWait) : nil)
        }
        // Each slot's reply on its own: entries one slot handed over are this consumer's now (pending),
        // so an error from another slot must not drop them. Only when every slot failed is it an error.
        var read: [String: [StreamEntry]] = [:]
        var failures: [RedisError] = []
        for reply in try await send(commands) {
            do {
                for (stream, entries) in try Self.decodeRead(reply, command: "XREADGROUP") { read[stream] = entries }
            } catch {
                failures.append(error)
            }
        }
        if failures.count == commands.count, let first = failures.first { throw first }
        return streams.compactMap { stream in read[stream].map { (stream, $0) } }
    }
}
