import ConveyorCore
import Synchronization

/// Hands out task ids from blocks reserved with one `nextval` each (the sequence steps by
/// ``Migrations/idBlockSize``), so a batch of a thousand tasks costs at most one round trip for ids.
/// Ids are unique across coordinators, increasing within one, and may have gaps (a crash loses the rest
/// of a block). A block older than ``maximumBlockAge`` is given up, rest and all: retention may drop a
/// generation once it has been closed for that long (see `conveyor_open_generation`), so no id of a
/// closed generation may be handed out later.
public final class TaskIDAllocator: Sendable {
    private struct Block {
        var next: Int64
        var end: Int64
        var reserved: ContinuousClock.Instant
        var remaining: Int64 { end - next }
    }

    /// How long a reserved block is used: at a trickle of tasks a block would otherwise last for days.
    public static let maximumBlockAge = Duration.seconds(60)

    private let blocks = Mutex<[Block]>([])

    public init() {}

    /// Returns `count` ids, reserving as many new blocks as needed in one statement on `session`.
    ///
    /// Safe for concurrent callers on different sessions: the check for enough ids and the taking of them
    /// happen under one lock, so a caller never takes ids another caller counted on. A caller that finds
    /// too few reserves what it lacks (outside the lock: it is a round trip) and tries again; under
    /// contention that may reserve a block more than needed, which only leaves a gap.
    public func allocate(_ count: Int, on session: PostgresSession) throws(PostgresError) -> [TaskID] {
        guard count > 0 else { return [] }
        while true {
            let outcome = blocks.withLock { blocks -> Result<[TaskID], Shortfall> in
                let now = ContinuousClock.now
                blocks.removeAll { now - $0.reserved > Self.maximumBlockAge }
                let available = blocks.reduce(0) { $0 + $1.remaining }
                guard available >= Int64(count) else { return .failure(Shortfall(missing: Int64(count) - available)) }
                var ids: [TaskID] = []
                ids.reserveCapacity(count)
                while ids.count < count {
                    let take = min(Int64(count - ids.count), blocks[0].remaining)
                    for id in blocks[0].next..<(blocks[0].next + take) { ids.append(TaskID(id)) }
                    blocks[0].next += take
                    if blocks[0].remaining == 0 { blocks.removeFirst() }
                }
                return .success(ids)
            }
            switch outcome {
            case .success(let ids):
                return ids
            case .failure(let shortfall):
                let starts = try reserve(blocksFor: shortfall.missing, on: session)
                let reserved = ContinuousClock.now
                blocks.withLock { blocks in
                    for start in starts { blocks.append(Block(next: start, end: start + Migrations.idBlockSize, reserved: reserved)) }
                }
            }
        }
    }

    private struct Shortfall: Error {
        var missing: Int64
    }

    /// One `nextval` per block, in one statement.
    private func reserve(blocksFor missing: Int64, on session: PostgresSession) throws(PostgresError) -> [Int64] {
        let blockCount = (missing + Migrations.idBlockSize - 1) / Migrations.idBlockSize
        let rows = try session.query(
            "SELECT nextval('conveyor_task_ids') FROM generate_series(1, $1)", [String(blockCount)], name: "allocate ids")
        let starts = rows.rows.compactMap { $0[0].flatMap { Int64($0) } }
        guard starts.count == Int(blockCount) else {
            throw PostgresError(.unexpectedResult, "expected \(blockCount) id blocks, got \(starts.count)", query: "allocate ids")
        }
        return starts
    }
}
