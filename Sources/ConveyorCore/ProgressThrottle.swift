/// Keeps the latest progress report per running attempt and lets it go at most once per `interval`:
/// a handler may report a thousand times a second, and the broker still carries about one report per
/// second per task (DESIGN §8: progress is an event, coalesced).
///
/// Pure and clock-agnostic: the caller passes the time, so the agent's and the coordinator's flushers
/// run on a real clock while the unit tests run on numbers.
public struct ProgressThrottle<Key: Hashable & Sendable, Instant: InstantProtocol & Sendable>: Sendable where Instant.Duration == Duration {
    private struct Entry: Sendable {
        var pending: TaskProgress?
        var lastSent: Instant?
    }

    public let interval: Duration
    private var entries: [Key: Entry] = [:]

    public init(interval: Duration = .seconds(1)) {
        self.interval = interval
    }

    /// Attempts with a report kept or sent and not yet finished.
    public var count: Int { entries.count }

    /// Keeps `progress` as the attempt's latest; it goes out at the next ``due(now:)`` once `interval`
    /// has passed since the attempt's previous report went out (at once for its first).
    public mutating func report(_ key: Key, _ progress: TaskProgress) {
        entries[key, default: Entry()].pending = progress
    }

    /// The reports that may go out now; each is marked sent at `now`.
    public mutating func due(now: Instant) -> [(Key, TaskProgress)] {
        var out: [(Key, TaskProgress)] = []
        for (key, entry) in entries {
            guard let pending = entry.pending else { continue }
            if let last = entry.lastSent, last.duration(to: now) < interval { continue }
            out.append((key, pending))
            entries[key] = Entry(pending: nil, lastSent: now)
        }
        return out
    }

    /// Forgets a finished attempt and returns its report not sent yet, so that the last word of an
    /// attempt (say "100 %") goes out with its outcome rather than being lost.
    public mutating func finish(_ key: Key) -> TaskProgress? {
        entries.removeValue(forKey: key)?.pending
    }

    /// Forgets the keys with nothing pending whose last report went out at least `idle` ago, and
    /// returns them: for reports that arrive without an end (the HTTP route), so memory stays bounded.
    public mutating func forgetIdle(now: Instant, idle: Duration) -> [Key] {
        let stale = entries.compactMap { key, entry -> Key? in
            guard entry.pending == nil, let last = entry.lastSent, last.duration(to: now) >= idle else { return nil }
            return key
        }
        for key in stale { entries[key] = nil }
        return stale
    }
}
