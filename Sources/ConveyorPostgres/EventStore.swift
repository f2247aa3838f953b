import ConveyorCore

/// Records lifecycle events: appends them to `task_events` and merges each task's newest state into
/// `tasks`, in one transaction per batch.
///
/// Budget (DESIGN §1): COPY is cheap, row updates are not. So the events of one batch are coalesced per
/// task first (a fast task's `running` and `succeeded` become one update), and the merge only touches a
/// row when the event moves it forward (``TaskStatus/progress(attempt:)``).
public struct EventStore: Sendable {
    public let client: PostgresClient
    /// Whether a batch notifies (only while some coordinator has watchers).
    let notifications: NotificationGate

    public init(client: PostgresClient, notifications: NotificationGate = NotificationGate()) {
        self.client = client
        self.notifications = notifications
    }

    /// What one ``record(_:)`` call wrote.
    public struct Outcome: Sendable, Hashable {
        /// Events appended to `task_events` (replays excluded when detected).
        public var eventsAppended: Int
        /// Rows of `tasks` that moved forward.
        public var tasksUpdated: Int
        /// Completion webhooks queued for the tasks that finished.
        public var webhooksQueued = 0
        /// What the workflow nodes that ended in this batch decided (nothing for plain tasks).
        public var workflows = WorkflowAdvance()
    }

    public func record(_ events: [LifecycleEvent]) async throws -> Outcome {
        guard !events.isEmpty else { return Outcome(eventsAppended: 0, tasksUpdated: 0) }
        // Most batches hold no progress report: then the events are the status events, not a copy.
        let statusEvents = events.contains(where: \.isProgress) ? events.filter { !$0.isProgress } : events
        let progress = Self.latestProgress(events)
        let recorded = progress.isEmpty ? statusEvents : statusEvents + progress
        // Round trips, not rows, are what a light load pays for: each is a wake-up of the connection's
        // thread and of its backend. A small batch goes in four (BEGIN with the merge's planner settings,
        // the events, the merge, COMMIT), where a COPY would add one; a large one in the COPY, which
        // PostgreSQL reads fastest.
        let history = recorded.count > Self.largestInsertedBatch ? Self.encodeHistory(recorded) : nil
        let merge = statusEvents.isEmpty ? nil : Self.encodeMerge(Self.coalesce(statusEvents))
        let progressRows = progress.isEmpty ? nil : Self.encodeProgress(progress)
        // Only outcomes that carry the callback flag cost the webhook statement: tasks without one, none.
        let withCallbacks = Array(statusEvents.lazy.filter { $0.hasCallback && $0.status.isTerminal }.map(\.taskID))
        let notifications = self.notifications
        return try await client.withSession { session in
            func apply(appended: Int) throws(PostgresError) -> Outcome {
                let merged = try merge.map { rows throws(PostgresError) in try Self.merge(rows, on: session) } ?? Merged()
                // After the status: an attempt's last report and its outcome often share a batch, and which
                // run's reports count depends on whether (and by whom) the task has finished.
                if let progressRows { try Self.mergeProgress(progressRows, on: session) }
                let webhooks = try WebhookStore.queue(withCallbacks, on: session)
                if try notifications.isOpen(on: session) {
                    try TaskNotifications.notify(TaskNotifications.payloads(for: recorded.lazy.map(\.taskID)), on: session)
                }
                // Last, so the child rows the join locks are held only until the COMMIT that follows.
                let advance = try WorkflowAdvance.settle(merged.endedNodes, of: merged.workflows, on: session)
                return Outcome(
                    eventsAppended: appended, tasksUpdated: merged.updated, webhooksQueued: webhooks + advance.webhooksQueued, workflows: advance)
            }
            guard let history else {
                // A small batch: one INSERT of array columns (one round trip, skipping events recorded
                // before) instead of a COPY (two).
                let rows = Self.historyColumns(recorded)
                return try session.transaction(settings: Self.mergePlan) { () throws(PostgresError) -> Outcome in
                    let inserted = try EventRowColumns.insertSkippingRecorded(rows, on: session, name: "insert events")
                    return try apply(appended: inserted)
                }
            }
            do {
                return try session.transaction(settings: Self.mergePlan) { () throws(PostgresError) -> Outcome in
                    try session.copy(into: "task_events (event_id, task_id, status, attempt, agent, at, detail)", history, name: "copy task_events")
                    return try apply(appended: recorded.count)
                }
            } catch let error as PostgresError where error.isUniqueViolation {
                // Some events were recorded before (a replay after a crash between COMMIT and XACK):
                // take the slower path that skips the ones already there.
                let rows = Self.historyColumns(recorded)
                return try session.transaction(settings: Self.mergePlan) { () throws(PostgresError) -> Outcome in
                    let inserted = try EventRowColumns.insertSkippingRecorded(rows, on: session, name: "insert new events")
                    return try apply(appended: inserted)
                }
            }
        }
    }

    /// The newest progress report per task and reporting agent in a batch: the one a reader wants, and
    /// the only one kept. Per agent, because when a duplicate run of an attempt overlaps the run that
    /// finishes it, the finisher's last report must still be there for ``mergeProgress(_:on:)`` to pick.
    package static func latestProgress(_ events: [LifecycleEvent]) -> [LifecycleEvent] {
        struct Reporter: Hashable {
            var taskID: TaskID
            var agent: String
        }
        var latest: [Reporter: LifecycleEvent] = [:]
        for event in events where event.isProgress {
            let reporter = Reporter(taskID: event.taskID, agent: event.agent)
            if let current = latest[reporter],
                (current.attempt, current.atMillis) >= (event.attempt, event.atMillis) { continue }
            latest[reporter] = event
        }
        return latest.values.sorted { ($0.taskID, $0.agent) < ($1.taskID, $1.agent) }
    }

    /// Sets `tasks.progress` to a newer report of the task's current attempt. Never touches the status.
    ///
    /// Runs after the status merge of the same batch. Until the task finishes, the newest report of its
    /// current attempt wins. Once it has finished, only reports made before it finished count, and only
    /// those of the run that finished it: the agent of the attempt's terminal event in `task_events`
    /// (unless that is `api`, a cancel, or the report came from a worker through the API, `api:<token>`,
    /// which names no run). A duplicate run of the attempt (a lease taken over from an agent that was
    /// only slow, a task the Reconciler dispatched again) interleaves its reports with the finisher's
    /// by time, so "newest" alone could show the duplicate's half-way report on a finished task; the
    /// finisher's last report replaces one of another agent even when that one is newer.
    ///
    /// Still open (rarer): the finisher's last report recorded in an earlier batch than a duplicate's
    /// newer one, and its outcome alone in a later batch (nothing then puts the finisher's report back);
    /// two Recorders recording the outcome and a duplicate's report at the same moment (each reads the
    /// task as it was before the other's COMMIT). A `finished_by` column set by the status merge would
    /// close the second; the first also needs the finisher's last report kept until the outcome comes
    /// (the stored progress holds one report, the newest).
    private static func mergeProgress(_ chunks: [[[UInt8]]], on session: PostgresSession) throws(PostgresError) {
        // One primary-key lookup per task, as for the status merge (see there; ``mergePlan``, set at
        // BEGIN); the finisher's lookup (task_events by task id) only for tasks that have finished.
        for columns in chunks {
            _ = try session.queryPrepared("""
                WITH reports AS (
                    SELECT p.id, p.attempt, p.agent, p.at, p.progress,
                           CASE WHEN t.finished_at IS NOT NULL THEN (
                               SELECT e.agent FROM task_events e
                               WHERE e.task_id = p.id AND e.attempt = p.attempt AND e.status = t.status AND e.agent <> 'api'
                               ORDER BY e.at LIMIT 1) END AS finisher
                    FROM unnest($1::bigint[], $2::integer[], $3::text[], $4::timestamptz[], $5::jsonb[]) AS p(id, attempt, agent, at, progress)
                    JOIN tasks t ON t.id = p.id
                    WHERE p.attempt > t.redrive_floor AND p.attempt >= t.attempts
                      AND (t.finished_at IS NULL OR p.at <= t.finished_at)
                ), candidates AS (
                    SELECT DISTINCT ON (id) id, attempt, agent, progress, finisher = agent AS by_finisher
                    FROM reports
                    WHERE finisher IS NULL OR finisher = agent OR agent LIKE 'api:%'
                    ORDER BY id, finisher = agent DESC NULLS LAST, attempt DESC, at DESC
                )
                UPDATE tasks t SET progress = c.progress
                FROM candidates c
                WHERE t.id = c.id
                  AND (t.progress IS NULL
                       OR (t.progress->>'attempt')::integer < c.attempt
                       OR ((t.progress->>'attempt')::integer = c.attempt
                           AND (t.progress->>'updated_at' < c.progress->>'updated_at'
                                OR (c.by_finisher AND t.progress ? 'agent' AND t.progress->>'agent' <> c.agent))))
                """, binary: columns, name: "merge task progress").affected
        }
    }

    /// The progress merge's batch as the array columns of its `unnest`: id, attempt, agent, at, progress;
    /// in chunks, as ``encodeMerge(_:)``.
    package static func encodeProgress(_ events: [LifecycleEvent]) -> [[[UInt8]]] {
        var rows = BinaryArrayColumns([(.bigint, 12), (.integer, 8), (.text, 16), (.timestamptz, 12), (.jsonb, 100)], rows: events.count)
        for event in events {
            guard let progress = event.progress else { continue }
            rows.columns[0].append(bigint: event.taskID.rawValue)
            rows.columns[1].append(integer: event.attempt)
            rows.columns[2].append(text: event.agent)
            rows.columns[3].append(timestamptzMillis: event.atMillis)
            rows.columns[4].append(jsonb: progress.json(attempt: event.attempt, atMillis: event.atMillis, agent: event.agent))
            rows.endRow()
        }
        return rows.finish()
    }

    /// The planner settings of a Recorder transaction: the merges look each task up by primary key (see
    /// ``merge(_:on:)``). Sent with its BEGIN.
    static let mergePlan = "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off"

    /// The most events a batch inserts with one INSERT of array columns; a larger one goes in a COPY.
    /// Below it, a COPY's extra round trip costs more than PostgreSQL saves reading COPY rows.
    static let largestInsertedBatch = 64

    /// What the merge moved: how many rows, and the workflow nodes among them that ended.
    struct Merged {
        var updated = 0
        var endedNodes: [TaskID] = []
        var workflows: Set<WorkflowID> = []
    }

    private static func merge(_ chunks: [[[UInt8]]], on session: PostgresSession) throws(PostgresError) -> Merged {
        // The batch has no statistics (a temp table then, an unnest of parameters now), so the planner
        // guessed a hash join over a sequential scan of all of `tasks`: every batch then read the whole
        // table (LoadTests/profile.sh at 1,000 tasks/s: PostgreSQL busy in ExecHashTableInsert and
        // HeapTupleSatisfiesVisibility, its CPU growing with the table). A batch touches a few thousand
        // rows at most: one primary-key lookup each (``mergePlan``, set at the transaction's BEGIN).
        // The ended workflow nodes come back in two arrays of one row: a plain task adds nothing to them.
        // The batch comes as array columns (``encodeMerge(_:)``), not through a temporary table.
        var merged = Merged()
        for columns in chunks {
            let row = try session.queryPrepared("""
                WITH moved AS (UPDATE tasks t SET
                    status = m.status,
                    attempts = m.attempt,
                    updated_at = m.at,
                    started_at = COALESCE(t.started_at, m.started_at),
                    finished_at = COALESCE(m.finished_at, t.finished_at),
                    result = COALESCE(m.result, t.result),
                    error = CASE WHEN m.status = 'succeeded' THEN NULL ELSE COALESCE(m.error, t.error) END,
                    dispatched = true
                FROM unnest($1::bigint[], $2::text[], $3::integer[], $4::timestamptz[], $5::timestamptz[], $6::timestamptz[], $7::jsonb[], $8::text[])
                     AS m(id, status, attempt, at, started_at, finished_at, result, error)
                WHERE t.id = m.id
                  -- Attempt 0 is a scheduled task's release (queued): below every attempt, it only ever moves
                  -- a row on from `scheduled`, so the redrive floor (which drops an old attempt's replays) must not hide it.
                  AND (m.attempt > t.redrive_floor OR m.attempt = 0)
                  AND conveyor_progress(m.status, m.attempt) > conveyor_progress(t.status, t.attempts)
                  -- Only the join moves a waiting workflow node (a stale attempt of a retried one must not).
                  AND t.status <> 'waiting'
                RETURNING t.id, t.status, t.workflow_id)
                SELECT count(*),
                       array_agg(id) FILTER (WHERE workflow_id IS NOT NULL AND status IN ('succeeded', 'failed', 'dead', 'cancelled', 'skipped')),
                       array_agg(DISTINCT workflow_id) FILTER (WHERE workflow_id IS NOT NULL AND status IN ('succeeded', 'failed', 'dead', 'cancelled', 'skipped'))
                FROM moved
                """, binary: columns, name: "merge task state").rows.first ?? []
            merged.updated += row.first.flatMap { $0.flatMap { Int($0) } } ?? 0
            if row.count == 3 {
                merged.endedNodes += PostgresArrayLiteral.parseIntegers(row[1]).map(TaskID.init(rawValue:))
                merged.workflows.formUnion(PostgresArrayLiteral.parseIntegers(row[2]).map(WorkflowID.init(rawValue:)))
            }
        }
        return merged
    }

    /// One merged state per task: the event with the greatest progress (the latest on a tie), with the
    /// earliest start time seen for it.
    package static func coalesce(_ events: [LifecycleEvent]) -> [LifecycleEvent] {
        // An event is a struct of some 200 bytes, so the sort moves 16-byte keys, not events, and each
        // task's state is built in one local before it is appended once. The keys sort by task, then by
        // arrival, so a task's events stay in the order they came: no dictionary (its hashing and its
        // sort of pairs in hash order were a third of this function at the ceiling), and a batch that
        // arrives almost in task order (ids are handed out in submission order) sorts in about one pass.
        var keys: [(task: TaskID, position: Int)] = []
        keys.reserveCapacity(events.count)
        for (position, event) in events.enumerated() { keys.append((event.taskID, position)) }
        keys.sort { $0.task != $1.task ? $0.task < $1.task : $0.position < $1.position }
        var merged: [LifecycleEvent] = []
        merged.reserveCapacity(events.count)
        var next = 0
        while next < keys.count {
            let task = keys[next].task
            var state = events[keys[next].position]
            if state.status == .running, state.startedAtMillis == nil { state.startedAtMillis = state.atMillis }
            next += 1
            while next < keys.count, keys[next].task == task {
                let event = events[keys[next].position]
                next += 1
                var started = earliest(state.startedAtMillis, event.startedAtMillis)
                if event.status == .running { started = earliest(started, event.atMillis) }
                // A later attempt outranks an earlier one even when the earlier one is terminal: after a
                // redrive a replayed `dead` of the old attempt must not hide the new attempt's event (the
                // merge then drops the old one under `redrive_floor`). Within an attempt, progress decides,
                // then time; on a full tie the first one seen stays.
                let newer = event.attempt != state.attempt
                    ? event.attempt > state.attempt
                    : event.rank > state.rank || (event.rank == state.rank && event.atMillis > state.atMillis)
                if newer { state = event }
                state.startedAtMillis = started
            }
            // In task order: the merge's join walks its rows in this order, so every Recorder locks the
            // rows it shares with another in the same order.
            merged.append(state)
        }
        return merged
    }

    private static func earliest(_ first: Int64?, _ second: Int64?) -> Int64? {
        guard let first else { return second }
        guard let second else { return first }
        return min(first, second)
    }

    package static func encodeHistory(_ events: [LifecycleEvent]) -> CopyRows {
        var encoder = CopyRowEncoder(reservingCapacity: events.count * 160)
        forEachHistoryRow(of: events) { event, detail in
            encoder.append(textWrittenBy: { event.writeEventID(to: &$0) })
            encoder.append(bigint: event.taskID.rawValue)
            encoder.append(text: event.isProgress ? "progress" : event.status.rawValue)
            encoder.append(integer: event.attempt)
            encoder.append(text: event.agent)
            encoder.append(timestamptzMillis: event.atMillis)
            encoder.append(jsonb: detail)
            encoder.endRow()
        }
        return encoder.finish()
    }

    /// The same rows as ``encodeHistory(_:)``, as chunks of array columns for the insert that skips those
    /// already recorded.
    static func historyColumns(_ events: [LifecycleEvent]) -> [[[UInt8]]] {
        var rows = EventRowColumns(reservingRows: events.count)
        forEachHistoryRow(of: events) { event, detail in
            rows.append(
                eventID: { event.writeEventID(to: &$0) }, taskID: event.taskID.rawValue, status: event.isProgress ? "progress" : event.status.rawValue,
                attempt: event.attempt, agent: event.agent, atMillis: event.atMillis, detail: detail)
        }
        return rows.finish()
    }

    /// Each event with its history row's detail (JSON, as bytes): one buffer for every row's, since built
    /// afresh per event it grew (and allocated) several times per event of every batch. Bytes rather
    /// than a `String`: it runs for every event, and the history's encoding was 7.7 % of the coordinator's
    /// samples at the ceiling, a `String`'s appends and its copy into the row among them.
    private static func forEachHistoryRow(of events: [LifecycleEvent], _ body: (LifecycleEvent, [UInt8]) -> Void) {
        var detail: [UInt8] = []
        detail.reserveCapacity(256)
        for event in events {
            detail.removeAll(keepingCapacity: true)
            detail.append(contentsOf: #"{"cid":"#.utf8)
            JSONValue.writeString(event.correlationID, into: &detail)
            if let error = event.error {
                detail.append(contentsOf: #","error":"#.utf8)
                JSONValue.writeString(error, into: &detail)
            }
            if let result = event.result {
                detail.append(contentsOf: #","result":"#.utf8)
                detail.append(contentsOf: result.utf8)
            }
            // What the history shows besides the status: when the attempt was dispatched and started,
            // when a retry is due, and a progress report. Times in Unix ms.
            if let started = event.startedAtMillis, !event.isProgress {
                detail.append(contentsOf: #","started":"#.utf8)
                detail.appendDecimal(started)
            }
            if let dispatched = event.dispatchedAtMillis {
                detail.append(contentsOf: #","dispatched":"#.utf8)
                detail.appendDecimal(dispatched)
            }
            if let next = event.nextAttemptAtMillis {
                detail.append(contentsOf: #","next_attempt":"#.utf8)
                detail.appendDecimal(next)
            }
            if let progress = event.progress {
                detail.append(contentsOf: #","progress":"#.utf8)
                detail.append(contentsOf: progress.json(attempt: event.attempt, atMillis: event.atMillis).utf8)
            }
            detail.append(UInt8(ascii: "}"))
            body(event, detail)
        }
    }

    /// The merge's batch as the array columns of its `unnest`, in task order: id, status, attempt, at,
    /// started_at, finished_at, result, error; in chunks of at most a few dozen megabytes (see
    /// ``BinaryArrayColumns``), one statement each.
    package static func encodeMerge(_ events: [LifecycleEvent]) -> [[[UInt8]]] {
        var rows = BinaryArrayColumns(
            [(.bigint, 12), (.text, 14), (.integer, 8), (.timestamptz, 12), (.timestamptz, 12), (.timestamptz, 12), (.jsonb, 4), (.text, 4)],
            rows: events.count)
        for event in events {
            rows.columns[0].append(bigint: event.taskID.rawValue)
            rows.columns[1].append(text: event.status.rawValue)
            rows.columns[2].append(integer: event.attempt)
            rows.columns[3].append(timestamptzMillis: event.atMillis)
            rows.columns[4].append(timestamptzMillis: event.startedAtMillis)
            rows.columns[5].append(timestamptzMillis: event.status.isTerminal ? event.atMillis : nil)
            rows.columns[6].append(jsonb: event.result)
            rows.columns[7].append(text: event.error)
            rows.endRow()
        }
        return rows.finish()
    }
}

extension [UInt8] {
    /// A signed number's decimal digits (a time in the history's detail).
    fileprivate mutating func appendDecimal(_ value: Int64) {
        if value < 0 { append(UInt8(ascii: "-")) }
        appendDecimalDigits(of: value.magnitude)
    }
}
