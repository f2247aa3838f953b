/// Rows of `task_events` as the array columns of an `unnest`, for the inserts that must skip rows
/// already recorded (a replayed batch, a webhook try recorded again after a crash), which a COPY cannot
/// do, and for a small batch, where one INSERT is a round trip less than a COPY. A large batch never
/// seen is one COPY (``EventStore/encodeHistory(_:)``).
///
/// An `unnest` rather than a temporary table: see ``BinaryArrayEncoder`` for what a temporary table
/// cost at every COMMIT.
struct EventRowColumns {
    private var rows: BinaryArrayColumns

    init(reservingRows rows: Int = 0) {
        self.rows = BinaryArrayColumns(
            [(.text, 32), (.bigint, 12), (.text, 14), (.integer, 8), (.text, 16), (.timestamptz, 12), (.jsonb, 100)], rows: rows)
    }

    /// One row; `eventID` writes the event id's bytes (never a NUL byte).
    mutating func append(
        eventID: (inout [UInt8]) -> Void, taskID: Int64, status: String, attempt: Int, agent: String, atMillis: Int64, detail: [UInt8]
    ) {
        rows.columns[0].append(textWrittenBy: eventID)
        rows.columns[1].append(bigint: taskID)
        rows.columns[2].append(text: status)
        rows.columns[3].append(integer: attempt)
        rows.columns[4].append(text: agent)
        rows.columns[5].append(timestamptzMillis: atMillis)
        rows.columns[6].append(jsonb: detail)
        rows.endRow()
    }

    /// The rows, in chunks (``BinaryArrayColumns``), for ``insertSkippingRecorded(_:on:name:)``.
    mutating func finish() -> [[[UInt8]]] { rows.finish() }

    /// Inserts the rows of `chunks` not recorded yet (by `task_events`' key); returns how many were new.
    static func insertSkippingRecorded(_ chunks: [[[UInt8]]], on session: PostgresSession, name: String) throws(PostgresError) -> Int {
        var inserted = 0
        for columns in chunks {
            inserted += try session.queryPrepared("""
                INSERT INTO task_events (event_id, task_id, status, attempt, agent, at, detail)
                SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::integer[], $5::text[], $6::timestamptz[], $7::jsonb[])
                ON CONFLICT DO NOTHING
                """, binary: columns, name: name).affected
        }
        return inserted
    }
}
