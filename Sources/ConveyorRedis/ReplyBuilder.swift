import CHiredis

/// Builds each reply as ``RedisReply`` values while hiredis parses it.
///
/// hiredis' own reader first builds a tree of C objects (a `calloc` per element, a `malloc` per string
/// and per array of element pointers), which was then walked into ``RedisReply`` and freed: two thirds
/// of the allocations of reading a stream (the benchmark's 500-entry XREADGROUP reply: 52 per entry
/// before, 17 now), and the many small frees in between made glibc consolidate its free lists on the
/// next large allocation (`malloc_consolidate` under `redisReaderGetReply`). hiredis lets a reader build
/// its own objects (`redisReplyObjectFunctions`): these callbacks append each element to the array being
/// filled, so a reply is built once, in Swift, with no C object to free. The parsing is still hiredis'.
///
/// A builder belongs to one reader, which belongs to one thread; hiredis calls back only from inside
/// `redisGetReply`/`redisReaderGetReply` on that thread, with the builder as the task's `privdata`.
/// (`redisReconnect` would give the context a new reader with hiredis' own functions: a connection is
/// made again with `connect()`, which attaches the builder.)
package final class ReplyBuilder {
    /// An array whose elements are still arriving.
    private struct OpenArray {
        var elements: [RedisReply]
        let count: Int
    }

    /// The arrays under construction, outermost first: at most eight (hiredis 0.14 refuses a ninth level).
    private var open: [OpenArray] = []
    /// The last reply completed and not yet taken.
    private var completed: RedisReply?

    package init() {
        open.reserveCapacity(8)
    }

    /// Makes `reader` build its replies with this builder. The builder must outlive the reader's use.
    func attach(to reader: UnsafeMutablePointer<redisReader>) {
        reset()
        reader.pointee.fn = Self.functions
        reader.pointee.privdata = Unmanaged.passUnretained(self).toOpaque()
    }

    /// The reply hiredis has just completed (its `redisGetReply` returned an object), once.
    func takeCompleted() -> RedisReply? {
        defer { completed = nil }
        return completed
    }

    /// Drops a reply left half-built by a reader error or a dropped connection.
    func reset() {
        open.removeAll(keepingCapacity: true)
        completed = nil
    }

    fileprivate func add(_ reply: RedisReply) {
        var value = reply
        while let last = open.indices.last {
            open[last].elements.append(value)
            guard open[last].elements.count == open[last].count else { return }
            value = .array(open.removeLast().elements)
        }
        completed = value
    }

    fileprivate func openArray(count: Int) {
        guard count > 0 else { return add(.array([])) }
        var elements: [RedisReply] = []
        // The count comes off the wire before any element has: a corrupt header must not reserve gigabytes.
        elements.reserveCapacity(min(count, Self.largestReservation))
        open.append(OpenArray(elements: elements, count: count))
    }

    /// The most elements reserved ahead for one array (a read of up to this many entries grows no further).
    static let largestReservation = 4_096

    /// The callbacks, shared by every reader. hiredis only reads this table.
    private nonisolated(unsafe) static let functions: UnsafeMutablePointer<redisReplyObjectFunctions> = {
        let table = UnsafeMutablePointer<redisReplyObjectFunctions>.allocate(capacity: 1)
        table.initialize(to: redisReplyObjectFunctions(
            createString: { task, text, length in
                guard let task, let builder = ReplyBuilder.of(task) else { return nil }
                let bytes = UnsafeRawBufferPointer(start: text, count: text == nil ? 0 : length)
                switch task.pointee.type {
                case REDIS_REPLY_STATUS: builder.add(.status(String(decoding: bytes, as: UTF8.self)))
                case REDIS_REPLY_ERROR: builder.add(.error(String(decoding: bytes, as: UTF8.self)))
                default: builder.add(.bulk(Array(bytes)))
                }
                return task.pointee.privdata
            },
            createArray: { task, count in
                guard let task, let builder = ReplyBuilder.of(task) else { return nil }
                builder.openArray(count: Int(count))
                return task.pointee.privdata
            },
            createInteger: { task, value in
                guard let task, let builder = ReplyBuilder.of(task) else { return nil }
                builder.add(.integer(Int64(value)))
                return task.pointee.privdata
            },
            createNil: { task in
                guard let task, let builder = ReplyBuilder.of(task) else { return nil }
                builder.add(.null)
                return task.pointee.privdata
            },
            // Nothing to free: the "object" handed back to hiredis is the builder itself.
            freeObject: { _ in }
        ))
        return table
    }()

    /// The builder a read task belongs to. Returning nil to hiredis reads as out of memory: the round
    /// trip fails and the connection is dropped, which is right for a reader that has no builder.
    private static func of(_ task: UnsafePointer<redisReadTask>) -> ReplyBuilder? {
        task.pointee.privdata.map { Unmanaged<ReplyBuilder>.fromOpaque($0).takeUnretainedValue() }
    }
}
