import ConveyorCore

/// How one agent shares a read among its ready streams (every served queue has one per priority), so
/// that the total never exceeds its free slots (DESIGN §2, pitfall 2) and priorities get their weight.
///
/// Each stream is *busy* (its last read filled the count asked: more is waiting), *trickling* (it gave
/// some: work arrives there) or *idle* (it gave nothing). The busy streams, or when none is busy the
/// trickling ones, share the free slots by their priority's ``TaskPriority/readWeight`` (6 : 3 : 1):
/// while high-priority work floods in, low priority still gets a tenth of the starts, so it is never
/// starved; a stream alone with work gets every slot. The others are probed with a read of one, so new
/// work there is found within a read or two of a probe round (the Consumer runs one every 25 ms while a
/// stream has work); when slots are too few for every probe, probes take turns.
/// When every stream is idle the agent waits on all of them at once (``allIdle(excluding:)``); when one
/// stream alone has work, its read waits too (``waitsOn(_:)``), briefly while other streams are probed,
/// so a steady flow is read as it arrives, one round trip per read, as if there were one stream.
struct ReadPlan: Sendable {
    struct Stream: Sendable, Hashable {
        var key: String
        var queue: String
        var priority: TaskPriority
    }

    enum Activity: Sendable {
        case busy, trickling, idle
    }

    let streams: [Stream]
    private var activity: [String: Activity]
    private var round = 0
    /// Which probe the next turn goes to: probes take turns (idle streams among themselves on probe rounds).
    private var probeCursor = 0
    private var idleProbeCursor = 0
    /// Where the weighted rotation of leftover slots stands. Its own counter, not ``round``: a round
    /// that hands out no leftover (a probe round, a second read of the same round) must not move it,
    /// or a steady pattern of such rounds could skip the lowest priority's turn every time (seen: low
    /// priority got none of the first 60 starts of a two-slot agent).
    private var rotation = 0

    init(streams: [Stream]) {
        self.streams = streams
        // Until a read says otherwise, work is expected on normal priority only.
        self.activity = Dictionary(uniqueKeysWithValues: streams.map { ($0.key, $0.priority == .normal ? .trickling : .idle) })
    }

    /// Whether every stream not excluded gave nothing when last read: then the agent waits on all of them.
    func allIdle(excluding excluded: Set<String> = []) -> Bool {
        streams.allSatisfy { excluded.contains($0.key) || activity[$0.key] == .idle }
    }

    /// How many entries to read from each stream this round (streams absent get none); the counts sum to
    /// at most `free`. `excluded` streams (of paused queues) get nothing. Without `probing`, streams that
    /// gave nothing when last read are left out (the Consumer probes them on a timer, so a steady flow on
    /// one stream costs one read command per round, not one per stream).
    mutating func counts(free: Int, excluded: Set<String> = [], probing: Bool = true) -> [(stream: Stream, count: Int)] {
        round &+= 1
        let candidates = streams.filter { !excluded.contains($0.key) }
        guard free > 0, !candidates.isEmpty else { return [] }
        let busy = candidates.filter { activity[$0.key] == .busy }
        var primary = busy.isEmpty ? candidates.filter { activity[$0.key] == .trickling } : busy
        if primary.isEmpty { primary = candidates }
        let primaryKeys = Set(primary.map(\.key))
        // Idle streams only on probe rounds; a stream that gave something is read every round.
        let probes = candidates.filter { !primaryKeys.contains($0.key) && (probing || activity[$0.key] != .idle) }
        var budget = free
        var result: [String: Int] = [:]
        // Probes first while they fit beside one read per primary stream; otherwise in turns. Idle streams
        // go first on a probe round, and a probe round always probes one: idle streams are looked at only
        // then, so a turn that depended on the round's number could miss them every time (a probe round
        // every ten reads never met `round % 4 == 0`, and a two-slot agent never started low priority
        // while higher ones had work).
        if !probes.isEmpty {
            let ordered = probing ? probes.filter { activity[$0.key] == .idle } + probes.filter { activity[$0.key] != .idle } : probes
            let idleCount = probing ? ordered.prefix { activity[$0.key] == .idle }.count : 0
            let room = max(0, budget - primary.count)
            let taken = min(room, ordered.count)
            let turn = taken > 0 ? taken : (idleCount > 0 || round % 4 == 0 ? 1 : 0)
            for index in 0..<min(turn, budget) {
                let stream: Stream
                if index < idleCount {
                    stream = ordered[(idleProbeCursor + index) % idleCount]
                } else {
                    let others = ordered.count - idleCount
                    stream = ordered[idleCount + probeCursor % others]
                    probeCursor &+= 1
                }
                result[stream.key, default: 0] += 1
            }
            idleProbeCursor &+= min(turn, budget, idleCount)
            budget -= result.values.reduce(0, +)
        }
        if budget > 0 {
            let totalWeight = primary.reduce(0) { $0 + $1.priority.readWeight }
            var given = 0
            for stream in primary {
                let share = budget * stream.priority.readWeight / totalWeight
                if share > 0 { result[stream.key, default: 0] += share }
                given += share
            }
            // What rounding left (all of it when slots are few) goes by a weighted rotation: over
            // `totalWeight` rounds each stream gets its weight's worth of turns, so a lower priority still
            // starts while a higher one has work, one slot at a time included.
            var leftover = budget - given
            let ordered = primary.sorted { $0.priority > $1.priority }
            while leftover > 0 {
                var position = rotation % totalWeight
                for stream in ordered {
                    if position < stream.priority.readWeight {
                        result[stream.key, default: 0] += 1
                        break
                    }
                    position -= stream.priority.readWeight
                }
                leftover -= 1
                rotation &+= 1
            }
        }
        return streams.compactMap { stream in result[stream.key].map { (stream, $0) } }
    }

    /// Whether some stream not excluded filled the count it was last asked for: more is waiting there.
    func hasBusy(excluding excluded: Set<String> = []) -> Bool {
        streams.contains { !excluded.contains($0.key) && activity[$0.key] == .busy }
    }

    /// Whether some stream not excluded gave nothing when last read: one a probe would look at.
    func hasIdle(excluding excluded: Set<String> = []) -> Bool {
        streams.contains { !excluded.contains($0.key) && activity[$0.key] == .idle }
    }

    /// Whether this round's read of `stream` should wait for entries: it is the one stream with work.
    func waitsOn(_ asked: [(stream: Stream, count: Int)]) -> String? {
        let primary = asked.filter { activity[$0.stream.key] != .idle }
        return primary.count == 1 ? primary[0].stream.key : nil
    }

    /// Records what a round returned.
    mutating func record(asked: [(stream: Stream, count: Int)], got: [String: Int]) {
        for (stream, count) in asked {
            let received = got[stream.key, default: 0]
            activity[stream.key] = received >= count ? .busy : received > 0 ? .trickling : .idle
        }
    }

    /// A blocking read delivered entries from these streams: work arrives there.
    mutating func markActive(_ keys: some Sequence<String>) {
        for key in keys where activity[key] == .idle { activity[key] = .trickling }
    }
}
