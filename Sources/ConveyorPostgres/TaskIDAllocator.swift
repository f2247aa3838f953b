import ConveyorCore
import Synchronization

/// Hands out task ids from blocks reserved with one `nextval` each (the sequence steps by
/// ``Migrations/idBlockSize``), so a batch of a thousand tasks costs at most one round trip for ids.
/// Ids are unique across coordinators, increasing within one, and may have gaps (a crash loses the rest
/// of a block).
public final class TaskIDAllocator: Sendable {
    private struct Block {
        var next: Int64
        var end: Int64
        var remaining: Int64 { end - next }
    }

    private let blocks = Mutex<[Block]>([])

    public init() {}

    /// Returns `count` ids, reserving as many new blocks as needed in one statement on `session`.
    public func allocate(_ count: Int, on session: PostgresSession) throws(PostgresError) -> [TaskID] {
        let available = blocks.withLock { $0.reduce(0) { $0 + $1.remaining } }
        if available < Int64(count) {
            let missing = Int64(count) - available
            let blockCount = (missing + Migrations.idBlockSize - 1) / Migrations.idBlockSize
            let rows = try session.query(
                "SELECT nextval('conveyor_task_ids') FROM generate_series(1, $1)", [String(blockCount)], name: "allocate ids")
            let starts = rows.rows.compactMap { $0[0].flatMap { Int64($0) } }
            guard starts.count == Int(blockCount) else {
                throw PostgresError(.unexpectedResult, "expected \(blockCount) id blocks, got \(starts.count)", query: "allocate ids")
            }
            blocks.withLock { blocks in
                for start in starts { blocks.append(Block(next: start, end: start + Migrations.idBlockSize)) }
            }
        }
        return blocks.withLock { blocks in
            var ids: [TaskID] = []
            ids.reserveCapacity(count)
            while ids.count < count {
                let take = min(Int64(count - ids.count), blocks[0].remaining)
                for id in blocks[0].next..<(blocks[0].next + take) { ids.append(TaskID(id)) }
                blocks[0].next += take
                if blocks[0].remaining == 0 { blocks.removeFirst() }
            }
            return ids
        }
    }
}
