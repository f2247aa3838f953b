import ConveyorCore
import Synchronization

/// Tasks this coordinator's Recorder saw end, in ten-second buckets over the last fifteen minutes: the
/// console's throughput chart. In memory, fed once per recorded batch (a count, never a query); with
/// several coordinators each shows the share its own Recorder merged.
public final class ThroughputHistory: Sendable {
    public struct Bucket: Sendable, Hashable {
        /// Start of the bucket, Unix ms.
        public var startMillis: Int64
        public var succeeded = 0
        /// Dead, failed, or cancelled.
        public var unsuccessful = 0
    }

    public static let bucketMillis: Int64 = 10_000
    public static let bucketCount = 90

    private let buckets = Mutex<[Bucket]>([])

    public init() {}

    /// Adds the ends of one recorded batch.
    public func record(succeeded: Int, unsuccessful: Int, atMillis: Int64) {
        guard succeeded > 0 || unsuccessful > 0 else { return }
        let start = atMillis - atMillis % Self.bucketMillis
        buckets.withLock { buckets in
            if buckets.last?.startMillis != start {
                buckets.append(Bucket(startMillis: start))
                if buckets.count > Self.bucketCount { buckets.removeFirst(buckets.count - Self.bucketCount) }
            }
            buckets[buckets.count - 1].succeeded += succeeded
            buckets[buckets.count - 1].unsuccessful += unsuccessful
        }
    }

    /// Every bucket of the window ending now, oldest first, empty ones included.
    public func window(nowMillis: Int64) -> [Bucket] {
        let stored = buckets.withLock { $0 }
        let last = nowMillis - nowMillis % Self.bucketMillis
        let byStart = Dictionary(stored.map { ($0.startMillis, $0) }, uniquingKeysWith: { $1 })
        return (0..<Self.bucketCount).reversed().map { back in
            let start = last - Int64(back) * Self.bucketMillis
            return byStart[start] ?? Bucket(startMillis: start)
        }
    }
}

extension ThroughputHistory {
    /// Counts the tasks a batch of lifecycle events ended (an end replayed later is counted again: a chart, not a ledger).
    func record(_ events: [LifecycleEvent]) {
        var succeeded = 0
        var unsuccessful = 0
        for event in events {
            switch event.status {
            case .succeeded: succeeded += 1
            case .dead, .failed, .cancelled: unsuccessful += 1
            default: break
            }
        }
        record(succeeded: succeeded, unsuccessful: unsuccessful, atMillis: WallClock.nowMillis())
    }
}
