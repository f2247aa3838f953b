/// Rows of `task_events` as the array columns of an `unnest`, for the inserts that must skip rows
/// already recorded (a replayed batch, a webhook try recorded again after a crash), which a COPY cannot
/// do. The common case, a batch never seen, is still one COPY (``EventStore/encodeHistory(_:)``).
///
/// An `unnest` rather than a temporary table: see ``BinaryArrayEncoder`` for what a temporary table
/// cost at every COMMIT.
struct EventRowColumns {
    private var eventIDs: BinaryArrayEncoder
    private var taskIDs: BinaryArrayEncoder
    private var statuses: BinaryArrayEncoder
    private var attempts: BinaryArrayEncoder
    private var agents: BinaryArrayEncoder
    private var times: BinaryArrayEncoder
    private var details: BinaryArrayEncoder

    init(reservingRows rows: Int = 0) {
        eventIDs = BinaryArrayEncoder(of: .text, reservingCapacity: rows * 32)
        taskIDs = BinaryArrayEncoder(of: .bigint, reservingCapacity: rows * 12)
        statuses = BinaryArrayEncoder(of: .text, reservingCapacity: rows * 14)
        attempts = BinaryArrayEncoder(of: .integer, reservingCapacity: rows * 8)
        agents = BinaryArrayEncoder(of: .text, reservingCapacity: rows * 16)
        times = BinaryArrayEncoder(of: .timestamptz, reservingCapacity: rows * 12)
        details = BinaryArrayEncoder(of: .jsonb, reservingCapacity: rows * 100)
    }

    /// One row; `eventID` writes the event id's bytes (never a NUL byte).
    mutating func append(
        eventID: (inout [UInt8]) -> Void, taskID: Int64, status: String, attempt: Int, agent: String, atMillis: Int64, detail: String
    ) {
        eventIDs.append(textWrittenBy: eventID)
        taskIDs.append(bigint: taskID)
        statuses.append(text: status)
        attempts.append(integer: attempt)
        agents.append(text: agent)
        times.append(timestamptzMillis: atMillis)
        details.append(jsonb: detail)
    }

    /// Inserts the rows not recorded yet (by `task_events`' key); returns how many were new.
    mutating func insertSkippingRecorded(on session: PostgresSession, name: String) throws(PostgresError) -> Int {
        let columns = [
            eventIDs.finish(), taskIDs.finish(), statuses.finish(), attempts.finish(), agents.finish(), times.finish(), details.finish(),
        ]
        return try session.queryPrepared("""
            INSERT INTO task_events (event_id, task_id, status, attempt, agent, at, detail)
            SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::integer[], $5::text[], $6::timestamptz[], $7::jsonb[])
            ON CONFLICT DO NOTHING
            """, binary: columns, name: name).affected
    }
}
