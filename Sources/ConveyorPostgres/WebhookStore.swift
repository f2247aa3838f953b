import ConveyorCore

/// A completion webhook to send: the delivery row, claimed, with the task's record as it is now.
public struct WebhookDelivery: Sendable, Hashable {
    /// `<task>-<attempt>-<status>`: one delivery per terminal status a task reaches.
    public var id: String
    public var taskID: TaskID
    public var url: String
    /// This try's number, 1 for the first.
    public var attempt: Int
    public var createdAtMillis: Int64
    /// The body to POST (see ``WebhookStore/payloadSQL``); nil when the task is gone or no longer
    /// finished (redriven since): the delivery is then dropped.
    public var payload: String?
    public var correlationID: String
    /// The task's attempt whose outcome this reports.
    public var taskAttempt: Int
}

/// What became of one try of a delivery.
public enum WebhookAttemptResult: Sendable, Hashable {
    case delivered(statusCode: Int)
    /// Tried again at `nextAttemptAtMillis`.
    case failed(error: String, nextAttemptAtMillis: Int64)
    /// No more tries: out of time, or the task no longer exists or is no longer finished.
    case gaveUp(error: String)
}

/// The `webhook_deliveries` table: completion webhooks still to send. Rows are written in the same
/// transaction that records a task's outcome (``EventStore``) or its cancel (``TaskStore/cancel(_:)``),
/// so a committed terminal status always has its delivery; each try is appended to the task's history.
public struct WebhookStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// The statement that queues the deliveries of the given tasks that have a `callback_url` and are
    /// finished, once per (task, attempt, status). $1: bigint[] of task ids.
    static let queueSQL = """
        INSERT INTO webhook_deliveries (id, task_id, url)
        SELECT t.id || '-' || t.attempts || '-' || t.status, t.id, t.callback_url
        FROM tasks t
        WHERE t.id = ANY($1::bigint[]) AND t.callback_url IS NOT NULL AND t.status IN ('succeeded', 'failed', 'dead', 'cancelled', 'skipped')
        ON CONFLICT DO NOTHING
        """

    /// Queues the deliveries of `ids` inside the caller's transaction; returns how many were new.
    static func queue(_ ids: [TaskID], on session: PostgresSession) throws(PostgresError) -> Int {
        guard !ids.isEmpty else { return 0 }
        return try session.query(queueSQL, [PostgresArrayLiteral.integers(ids.map(\.rawValue))], name: "queue webhooks").affected
    }

    /// Takes up to `limit` due deliveries for this process: each is hidden from other coordinators for
    /// `lease` (a crash mid-send makes it due again then: at-least-once) and its try counted.
    public func claimDue(limit: Int, lease: Duration) async throws -> [WebhookDelivery] {
        try await client.withSession { session in
            let rows = try session.query("""
                WITH due AS (
                    UPDATE webhook_deliveries d
                    SET next_attempt_at = now() + $2::bigint * interval '1 millisecond', attempts = d.attempts + 1
                    FROM (SELECT id FROM webhook_deliveries WHERE next_attempt_at <= now()
                          ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) picked
                    WHERE d.id = picked.id
                    RETURNING d.id, d.task_id, d.url, d.attempts, (extract(epoch FROM d.created_at) * 1000)::bigint AS created
                )
                SELECT due.id, due.task_id, due.url, due.attempts, due.created,
                       CASE WHEN t.status IN ('succeeded', 'failed', 'dead', 'cancelled', 'skipped') THEN \(Self.payloadSQL) END,
                       t.correlation_id, t.attempts
                FROM due LEFT JOIN tasks t ON t.id = due.task_id
                """, [String(limit), String(lease.milliseconds)], name: "claim webhooks").rows
            return rows.compactMap { row -> WebhookDelivery? in
                guard let id = row[0], let taskID = row[1].flatMap({ TaskID($0) }), let url = row[2],
                    let attempt = row[3].flatMap({ Int($0) }), let created = row[4].flatMap({ Int64($0) })
                else { return nil }
                return WebhookDelivery(
                    id: id, taskID: taskID, url: url, attempt: attempt, createdAtMillis: created, payload: row[5],
                    correlationID: row[6] ?? "", taskAttempt: row[7].flatMap { Int($0) } ?? 0)
            }
        }
    }

    /// The task's final record as the webhook's JSON body, built by PostgreSQL from the row of `t`.
    static let payloadSQL = """
        json_build_object(
            'event', 'task.finished',
            'delivery_id', due.id,
            'task', json_build_object(
                'id', t.id, 'type', t.type, 'queue', t.queue, 'status', t.status, 'result', t.result, 'error', t.error,
                'attempts', t.attempts, 'max_attempts', t.max_attempts, 'correlation_id', t.correlation_id,
                'tags', COALESCE(t.tags, '{}'::jsonb),
                'created_at', \(TaskStore.rfc3339("t.created_at")), 'run_at', \(TaskStore.rfc3339("t.run_at")),
                'started_at', \(TaskStore.rfc3339("t.started_at")), 'finished_at', \(TaskStore.rfc3339("t.finished_at"))))::text
        """

    /// Records the tries of one pass in one transaction: delivered and given-up rows are deleted, failed
    /// ones rescheduled, and every try becomes a `webhook` row of its task's history.
    public func record(_ results: [(delivery: WebhookDelivery, result: WebhookAttemptResult)]) async throws {
        guard !results.isEmpty else { return }
        var done: [String] = []
        var retryIDs: [String] = []
        var retryAt: [Int64] = []
        var retryErrors: [String] = []
        var history = EventRowColumns(reservingRows: results.count)
        let now = WallClock.nowMillis()
        for (delivery, result) in results {
            var detail = "{\"cid\":"
            JSONValue.writeString(delivery.correlationID, into: &detail)
            detail += ",\"delivery\":"
            JSONValue.writeString(delivery.id, into: &detail)
            detail += ",\"url\":"
            JSONValue.writeString(delivery.url, into: &detail)
            detail += ",\"try\":\(delivery.attempt)"
            switch result {
            case .delivered(let code):
                done.append(delivery.id)
                detail += ",\"outcome\":\"delivered\",\"status_code\":\(code)"
            case .failed(let error, let next):
                retryIDs.append(delivery.id)
                retryAt.append(next)
                retryErrors.append(error)
                detail += ",\"outcome\":\"failed\",\"error\":"
                JSONValue.writeString(error, into: &detail)
                detail += ",\"next_attempt\":\(next)"
            case .gaveUp(let error):
                done.append(delivery.id)
                detail += ",\"outcome\":\"gave_up\",\"error\":"
                JSONValue.writeString(error, into: &detail)
            }
            detail += "}"
            // The delivery id is read back from a text column, so it holds no NUL byte.
            history.append(
                eventID: { $0.append(contentsOf: "\(delivery.id)-webhook-\(delivery.attempt)".utf8) }, taskID: delivery.taskID.rawValue, status: "webhook",
                attempt: delivery.taskAttempt, agent: "webhooks", atMillis: now, detail: Array(detail.utf8))
        }
        let (finished, retries, historyRows) = (done, (ids: retryIDs, at: retryAt, errors: retryErrors), history.finish())
        try await client.withSession { session in
            try session.transaction { () throws(PostgresError) in
                if !finished.isEmpty {
                    _ = try session.query(
                        "DELETE FROM webhook_deliveries WHERE id = ANY($1::text[])", [PostgresArrayLiteral.text(finished)], name: "finish webhooks")
                }
                if !retries.ids.isEmpty {
                    _ = try session.query("""
                        UPDATE webhook_deliveries d SET next_attempt_at = to_timestamp(r.at / 1000.0), last_error = r.error
                        FROM unnest($1::text[], $2::bigint[], $3::text[]) AS r(id, at, error) WHERE d.id = r.id
                        """, [PostgresArrayLiteral.text(retries.ids), PostgresArrayLiteral.integers(retries.at), PostgresArrayLiteral.text(retries.errors)],
                        name: "reschedule webhooks")
                }
                // A replayed try (a crash after this COMMIT, before the process forgot it) must not fail the
                // batch: rows already there are skipped.
                _ = try EventRowColumns.insertSkippingRecorded(historyRows, on: session, name: "record webhook events")
            }
        }
    }

    /// Deliveries not yet done (tests read it).
    public func pendingCount() async throws -> Int {
        try await client.withSession { session in
            try session.query("SELECT count(*) FROM webhook_deliveries", name: "count webhooks").rows.first?[0].flatMap { Int($0) } ?? 0
        }
    }
}
