/// A batch as the array columns of one `unnest` (one ``BinaryArrayEncoder`` per column), cut into
/// chunks so that no statement's parameters come near PostgreSQL's limit of 1 GB per message: a batch of
/// large results (a megabyte each is allowed) would otherwise be refused, and retried, for ever. Rows stay
/// in order across chunks, so statements run chunk by chunk still lock rows in the batch's order.
struct BinaryArrayColumns {
    /// The current chunk's columns, in the statement's order; write a row through them, then ``endRow()``.
    var columns: [BinaryArrayEncoder]
    private var chunks: [[[UInt8]]] = []
    private var rowsInChunk = 0
    private let chunkBytes: Int

    /// - Parameters:
    ///   - layout: each column's element type and the bytes a row usually takes in it (reserved ahead).
    ///   - rows: how many rows the batch has.
    init(_ layout: [(BinaryArrayEncoder.Element, bytesPerRow: Int)], rows: Int, chunkBytes: Int = 32 << 20) {
        self.chunkBytes = chunkBytes
        columns = layout.map { BinaryArrayEncoder(of: $0.0, reservingCapacity: min(rows * $0.bytesPerRow, chunkBytes)) }
    }

    mutating func endRow() {
        rowsInChunk += 1
        if columns.reduce(0, { $0 + $1.byteCount }) >= chunkBytes { closeChunk() }
    }

    /// The chunks, each one statement's parameters; none when no row was written.
    mutating func finish() -> [[[UInt8]]] {
        if rowsInChunk > 0 { closeChunk() }
        defer { chunks = [] }
        return chunks
    }

    private mutating func closeChunk() {
        chunks.append(columns.indices.map { columns[$0].finish() })
        rowsInChunk = 0
    }
}
