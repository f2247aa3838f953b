import ConveyorCore

/// How one agent shares a read among its ready streams (every served queue has one per priority), so
/// that the total never exceeds its free slots (DESIGN §2, pitfall 2) and priorities get their weight.
///
/// Streams that had more work than the last read asked of them are *active* and share the free slots by
/// their priority's ``TaskPriority/readWeight`` (6 : 3 : 1): while high-priority work floods in, low
/// priority still gets a tenth of the starts, so it is never starved. A stream that came back short is
/// *drained*; it is probed with a read of one, so new work there is found within a read or two. When
/// slots are too few for every probe, the probes take turns.
struct ReadPlan: Sendable {
    struct Stream: Sendable, Hashable {
        var key: String
        var queue: String
        var priority: TaskPriority
    }

    let streams: [Stream]
    private(set) var drained: Set<String>
    private var round = 0
    /// Which drained stream the next probe goes to: probes take turns.
    private var probeCursor = 0

    init(streams: [Stream]) {
        self.streams = streams
        // Until a read says otherwise, only normal priority is assumed to have work.
        self.drained = Set(streams.filter { $0.priority != .normal }.map(\.key))
    }

    /// How many entries to read from each stream this round (streams absent get none); the counts sum to
    /// at most `free`. `excluded` streams (of paused queues) get nothing.
    mutating func counts(free: Int, excluded: Set<String> = []) -> [(stream: Stream, count: Int)] {
        round &+= 1
        let candidates = streams.filter { !excluded.contains($0.key) }
        guard free > 0, !candidates.isEmpty else { return [] }
        var active = candidates.filter { !drained.contains($0.key) }
        var probes = candidates.filter { drained.contains($0.key) }
        if active.isEmpty {
            active = probes
            probes = []
        }
        var budget = free
        var result: [String: Int] = [:]
        // Probes first while they fit beside one read per active stream; otherwise in turns.
        if !probes.isEmpty {
            let room = max(0, budget - active.count)
            let taken = min(room, probes.count)
            let turn = taken > 0 ? taken : (round % 4 == 0 ? 1 : 0)
            for _ in 0..<min(turn, budget) {
                result[probes[probeCursor % probes.count].key] = 1
                probeCursor &+= 1
            }
            budget -= result.values.reduce(0, +)
        }
        if budget > 0 {
            let totalWeight = active.reduce(0) { $0 + $1.priority.readWeight }
            var given = 0
            for stream in active {
                let share = budget * stream.priority.readWeight / totalWeight
                if share > 0 { result[stream.key, default: 0] += share }
                given += share
            }
            // What rounding left (all of it when slots are few) goes by a weighted rotation: over
            // `totalWeight` rounds each stream gets its weight's worth of turns, so a lower priority still
            // starts while a higher one has work, one slot at a time included.
            var leftover = budget - given
            var turn = round
            while leftover > 0 {
                var position = turn % totalWeight
                for stream in active.sorted(by: { $0.priority > $1.priority }) {
                    if position < stream.priority.readWeight {
                        result[stream.key, default: 0] += 1
                        break
                    }
                    position -= stream.priority.readWeight
                }
                leftover -= 1
                turn &+= 1
            }
        }
        return streams.compactMap { stream in result[stream.key].map { (stream, $0) } }
    }

    /// Records what a round returned: a stream that filled its count may have more; one that did not is drained.
    mutating func record(asked: [(stream: Stream, count: Int)], got: [String: Int]) {
        for (stream, count) in asked {
            if got[stream.key, default: 0] >= count { drained.remove(stream.key) } else { drained.insert(stream.key) }
        }
    }

    /// A blocking read delivered entries from these streams: they have work.
    mutating func markActive(_ keys: some Sequence<String>) {
        for key in keys { drained.remove(key) }
    }
}
