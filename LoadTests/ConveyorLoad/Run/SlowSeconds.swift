/// The seconds of a run whose enqueue P99 passed ``threshold``, each with what the run saw happen then.
///
/// Issue 17's soak allows no latency spike above 50 ms that the report cannot explain. The causes named
/// are the ones this machine has shown (docs/performance.md, "A fifth step"): an agent restarted by the
/// soak (its tasks go back, a new consumer joins), the hypervisor taking the CPUs away (steal), both
/// cores busy, a TCP loss waited out (a retransmission timeout, at least Linux' 200 ms: slow seconds of
/// 203–212 ms kept turning up; or a connection attempt dropped by a full listen queue), an autovacuum
/// worker at work, Redis forking (an AOF rewrite), and retention opening or dropping a generation of
/// partitions (every submission's insert queues behind its wait for the parent tables' ACCESS EXCLUSIVE
/// locks and behind its hold of them: a 200 ms second each time before its waits were cut to 5 ms
/// attempts, see `LockPatience`), the last three as ``BackendActivitySampler`` saw them. A slow second
/// with none of them is counted as unexplained and listed.
struct SlowSeconds: Sendable, Codable, Equatable {
    struct Entry: Sendable, Codable, Equatable {
        var second: Int
        var enqueueP99Milliseconds: Double
        var causes: [Cause]
    }

    enum Cause: String, Sendable, Codable, CaseIterable {
        case agentRestart = "agent restart"
        case steal = "steal"
        case cpuBusy = "CPUs busy"
        case tcpTimeout = "TCP timeout"
        case autovacuum = "autovacuum"
        case redisFork = "Redis fork"
        case partitionChange = "partition drop or open"
    }

    static let threshold = 50.0
    /// A restart explains the seconds from its start until this long after it ended (the new agent
    /// starts, the old one's tasks are reclaimed).
    static let restartShadowSeconds: Int64 = 5
    /// Steal in % of all CPUs above which a second counts as taken away.
    static let stealThreshold = 5.0
    /// Busy in % of all CPUs above which a second counts as saturated.
    static let busyThreshold = 95.0

    var entries: [Entry]

    var unexplained: [Entry] { entries.filter(\.causes.isEmpty) }

    /// `restarts` are the wall-clock spans (milliseconds) of each agent restart; `startedAtMillis` is the
    /// run's start, from which the timeline's second `n` covers the `n`-th second. A cause in the second
    /// before counts too: a request answered late may have been sent then.
    ///
    /// `activity` is what the backends were seen doing (wall clock milliseconds): it explains the second it
    /// was seen in and the next.
    init(timeline: [LoadRun.Second], restarts: [ClosedRange<Int64>], activity: [(Int64, Cause)] = [], startedAtMillis: Int64) {
        let restartSeconds: [ClosedRange<Int64>] = restarts.map { span in
            let first = (span.lowerBound - startedAtMillis) / 1000 + 1
            let last = (span.upperBound - startedAtMillis) / 1000 + 1 + Self.restartShadowSeconds
            return first...max(first, last)
        }
        var seenInSecond: [Int: Set<Cause>] = [:]
        for (at, cause) in activity {
            let second = Int((at - startedAtMillis) / 1000 + 1)
            seenInSecond[second, default: []].insert(cause)
            seenInSecond[second + 1, default: []].insert(cause)
        }
        let machine = Dictionary(timeline.compactMap { point in point.machine.map { (point.second, $0) } }, uniquingKeysWith: { first, _ in first })
        entries = timeline.filter { $0.enqueueP99Milliseconds > Self.threshold }.map { point in
            var causes: [Cause] = []
            if restartSeconds.contains(where: { $0.contains(Int64(point.second)) }) { causes.append(.agentRestart) }
            let seen = [machine[point.second], machine[point.second - 1]].compactMap { $0 }
            if seen.contains(where: { $0.stealPercent >= Self.stealThreshold }) { causes.append(.steal) }
            if seen.contains(where: { $0.busyPercent >= Self.busyThreshold }) { causes.append(.cpuBusy) }
            if seen.contains(where: { $0.tcpTimeouts > 0 }) { causes.append(.tcpTimeout) }
            let backends = seenInSecond[point.second] ?? []
            causes += [Cause.autovacuum, .redisFork, .partitionChange].filter(backends.contains)
            return Entry(second: point.second, enqueueP99Milliseconds: point.enqueueP99Milliseconds, causes: causes)
        }
    }

    /// One line for the report: how many, by cause, and the unexplained ones by second.
    var summary: String {
        guard !entries.isEmpty else { return "none with enqueue P99 > \(Int(Self.threshold)) ms" }
        let counts = Cause.allCases.compactMap { cause -> String? in
            let count = entries.filter { $0.causes.contains(cause) }.count
            return count == 0 ? nil : "\(count) \(cause.rawValue)"
        }
        var line = "\(entries.count) with enqueue P99 > \(Int(Self.threshold)) ms"
        if !counts.isEmpty { line += " (" + counts.joined(separator: ", ") + ")" }
        let unexplained = self.unexplained
        line += "; unexplained: \(unexplained.count)"
        if !unexplained.isEmpty {
            line += " at " + unexplained.prefix(8).map { "\($0.second) s (\(Int($0.enqueueP99Milliseconds.rounded())) ms)" }.joined(separator: ", ")
            if unexplained.count > 8 { line += ", …" }
        }
        return line
    }
}
