import ConveyorCore

/// The generations of `tasks` and `task_events` (migration 4): pairs of partitions by task id, opened
/// about daily and dropped whole once retention allows, so removing old work never runs a DELETE over
/// millions of rows.
public struct GenerationStore: Sendable {
    public let client: PostgresClient
    /// How opens and drops ask for the locks of the partitioned tables.
    public var patience: LockPatience

    public init(client: PostgresClient, patience: LockPatience = .standard) {
        self.client = client
        self.patience = patience
    }

    /// One generation as `conveyor_generations` records it.
    public struct Generation: Sendable, Hashable {
        public var number: Int64
        public var firstID: Int64
        /// Time since it opened, by PostgreSQL's clock.
        public var age: Duration
    }

    /// What one retention pass removed.
    public struct Removal: Sendable, Hashable {
        /// Generations dropped, each with its tasks and their events.
        public var generationsDropped = 0
        /// Tasks of dropped generations kept (moved to the default partition) because they had not
        /// finished before the window.
        public var tasksKept = 0
        /// Rows deleted from the default partitions and from the events recorded before migration 4.
        public var rowsDeleted = 0
        /// Day partitions of the events recorded before migration 4 that were dropped.
        public var legacyPartitionsDropped = 0
        /// Attempts beyond the first that drops needed to get their locks (see ``LockPatience``).
        public var lockRetries = 0
        /// The longest detach's transaction, about as long as it held the partitioned tables' locks
        /// (every submission waits that long).
        public var longestDetach = Duration.zero

        public init() {}
    }

    /// Opens and detaches commit without waiting for their WAL to reach the disk: they hold the
    /// partitioned tables' locks until their commit returns, and every submission waits for those. Safe
    /// because a crash can only lose such a commit whole, with everything after it (a later durable
    /// commit flushes the WAL before it): an open lost that way was never used (ids move to a new
    /// generation only in ``advance()``, a durable transaction after it), a detach lost that way leaves
    /// the generation attached as before, and the pass repeats it.
    static let quickCommit = "SET LOCAL synchronous_commit = off"

    /// Scanning a day-sized generation for tasks to keep may take minutes.
    public static let maintenanceTimeout = Duration.seconds(600)
    /// Opening a generation creates four tables with their indexes and attaches them. Its lock waits
    /// are bounded by ``patience``; what is left is catalog work and its fsyncs, which on a starved
    /// machine (CI with every suite at once) took longer than the default statement deadline. The trade:
    /// once it holds the default partitions' locks, a slow attach keeps the Recorder's merges waiting as
    /// long (they give up at their own deadline and retry, losing nothing); with the default deadline the
    /// open gave up instead, and on a machine that slow every later pass would have too.
    static let openTimeout = Duration.seconds(60)

    /// Every generation, oldest first.
    public func generations() async throws -> [Generation] {
        try await client.withSession { session in
            try session.query("""
                SELECT number, first_id, (extract(epoch FROM now() - opened_at) * 1000)::bigint
                FROM conveyor_generations ORDER BY number
                """, name: "generations").rows.compactMap { row in
                guard let number = row[0].flatMap({ Int64($0) }), let first = row[1].flatMap({ Int64($0) }),
                    let age = row[2].flatMap({ Int64($0) })
                else { return nil }
                return Generation(number: number, firstID: first, age: .milliseconds(age))
            }
        }
    }

    /// The next id the sequence hands out a block from.
    public func sequencePosition() async throws -> Int64 {
        try await client.withSession { session in
            guard let value = try session.query("SELECT last_value FROM conveyor_task_ids", name: "sequence position").rows.first?[0].flatMap({ Int64($0) }) else {
                throw PostgresError(.unexpectedResult, "no sequence value", query: "sequence position")
            }
            return value
        }
    }

    /// Opens generation `number` (a no-op when it or a later one exists), then moves the ids to the
    /// newest generation (``advance()``); returns whether this call created it.
    @discardableResult
    public func open(_ number: Int64) async throws -> Bool {
        let opened = try await client.withSession { session in
            try session.withStatementTimeout(Self.openTimeout) { () throws(PostgresError) -> Bool in
                try patience.run(on: session, settings: Self.quickCommit) { () throws(PostgresError) -> Bool in
                    try session.query("SELECT conveyor_open_generation($1)", [String(number)], name: "open generation").rows.first?[0] == "t"
                }.value
            }
        }
        try await advance()
        return opened
    }

    /// Moves the id sequence to the newest generation and closes the ones before it: the second step of
    /// an open, in a transaction of its own once the new tables are committed. Idempotent, so a pass
    /// repeats it in case an open's second step failed.
    public func advance() async throws {
        _ = try await client.withSession { session in
            try session.query("SELECT conveyor_advance_generation()", name: "advance generation").rows.count
        }
    }

    /// The session lock of the coordinator running a retention pass ("convret" in ASCII).
    static let retentionLockKey: Int64 = 0x636F_6E76_7265_7400

    /// How close to the end of its retention a dead task may still be redriven: a redrive is the one
    /// way a finished task becomes unfinished, and the drop relies on that not happening after its scan.
    public static let redriveMargin = Duration.seconds(900)

    /// Drops every closed generation that has been closed for longer than `retention` plus the age at
    /// which coordinators give up an id block (detached under the partitioned tables' locks, dropped at
    /// the end of the pass without them: see ``dropDetached(on:)``), then deletes finished rows older
    /// than the window from the default partitions (tasks kept by earlier drops) and the events
    /// recorded before migration 4.
    public func removeExpired(retention: Duration) async throws -> Removal {
        let retentionMillis = String(retention.milliseconds)
        let expiredAfter = String((retention + TaskIDAllocator.maximumBlockAge).milliseconds)
        let patience = patience
        return try await client.withSession { session in
            var removal = Removal()
            // One coordinator at a time: another's scan of an old partition would hold up this one's drop.
            guard try session.query("SELECT pg_try_advisory_lock($1)", [String(Self.retentionLockKey)], name: "retention lock").rows.first?[0] == "t" else {
                return removal
            }
            defer { _ = try? session.query("SELECT pg_advisory_unlock($1)", [String(Self.retentionLockKey)], name: "retention unlock") }
            let expired = try session.query("""
                SELECT number FROM conveyor_generations
                WHERE closed_at < now() - $1::bigint * interval '1 millisecond' ORDER BY number
                """, [expiredAfter], name: "expired generations").rows.compactMap { $0[0] }
            for number in expired {
                // Without locks: the detach also keeps, under its lock, every row not dispatched (a late
                // commit, a redrive): the only ways a row appears or becomes unfinished after this scan.
                // A day-sized generation: the one statement that may run for minutes.
                let kept = try session.withStatementTimeout(Self.maintenanceTimeout) { () throws(PostgresError) in
                    try session.query("""
                        SELECT id FROM tasks_g\(number)
                        WHERE status NOT IN ('succeeded', 'failed', 'dead', 'cancelled', 'skipped') OR finished_at IS NULL
                           OR finished_at >= now() - $1::bigint * interval '1 millisecond'
                           -- A running workflow's join reads its ended nodes (their status, their results).
                           OR workflow_id IN (SELECT id FROM workflows WHERE status = 'running')
                        """, [retentionMillis], name: "tasks to keep").rows.compactMap { $0[0] }
                }
                let (moved, attempts, took) = try patience.run(on: session, settings: Self.quickCommit) { () throws(PostgresError) -> Int64 in
                    try session.query(
                        "SELECT conveyor_detach_generation($1, $2::bigint[])",
                        [number, "{" + kept.joined(separator: ",") + "}"], name: "detach generation").rows.first?[0].flatMap { Int64($0) } ?? -1
                }
                removal.lockRetries += attempts - 1
                removal.longestDetach = max(removal.longestDetach, took)
                if moved >= 0 {
                    removal.generationsDropped += 1
                    removal.tasksKept += Int(moved)
                }
            }
            removal.rowsDeleted += try session.query("""
                DELETE FROM tasks_default WHERE status IN ('succeeded', 'failed', 'dead', 'cancelled', 'skipped')
                  AND finished_at < now() - $1::bigint * interval '1 millisecond'
                  AND (workflow_id IS NULL OR workflow_id NOT IN (SELECT id FROM workflows WHERE status = 'running'))
                """, [retentionMillis], name: "prune kept tasks").affected
            removal.rowsDeleted += try session.query("""
                DELETE FROM task_events_default e WHERE at < now() - $1::bigint * interval '1 millisecond'
                  AND NOT EXISTS (SELECT 1 FROM tasks_default t WHERE t.id = e.task_id)
                """, [retentionMillis], name: "prune kept events").affected
            // Workflows go with the same window, their edges with them.
            removal.rowsDeleted += try session.query("""
                WITH gone AS (
                    DELETE FROM workflows WHERE status <> 'running' AND finished_at < now() - $1::bigint * interval '1 millisecond'
                    RETURNING id
                )
                DELETE FROM workflow_edges WHERE workflow_id IN (SELECT id FROM gone)
                """, [retentionMillis], name: "prune workflows").affected
            removal.rowsDeleted += try session.query("""
                DELETE FROM task_tags_default g WHERE NOT EXISTS (SELECT 1 FROM tasks_default t WHERE t.id = g.task_id)
                """, name: "prune kept tags").affected
            try session.withStatementTimeout(Self.maintenanceTimeout) { () throws(PostgresError) in
                try removeLegacyEvents(retentionMillis: retentionMillis, on: session, into: &removal)
                // Last, so that a drop held up (an autovacuum that will not yield) delays nothing else;
                // one a crash or a failed pass left recorded goes with them.
                try Self.dropDetached(on: session)
            }
            return removal
        }
    }

    /// Drops the tables of generations that `conveyor_detach_generation` detached, in a statement (and so
    /// a transaction) of their own. No statement reads a detached table, so dropping it queues nothing
    /// behind it; it may wait for an autovacuum of the table, which PostgreSQL cancels for it after `deadlock_timeout`
    /// (one against wraparound it does not cancel: then the pass fails here, and the next one retries).
    /// Out of the detach's transaction, the drop's work (the files, the buffers, the durable commit a
    /// drop forces) no longer happens under the partitioned tables' locks.
    private static func dropDetached(on session: PostgresSession) throws(PostgresError) {
        _ = try session.query("SELECT conveyor_drop_detached_generations()", name: "drop detached generations")
    }

    /// Drops the day partitions of the events recorded before migration 4 once the whole day is older
    /// than the window, and the table itself once nothing is left.
    private func removeLegacyEvents(retentionMillis: String, on session: PostgresSession, into removal: inout Removal) throws(PostgresError) {
        guard try session.query("SELECT to_regclass('task_events_legacy') IS NOT NULL", name: "legacy events?").rows.first?[0] == "t" else { return }
        let days = try session.query("""
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'task_events_legacy'::regclass AND c.relname ~ '^task_events_[0-9]{8}$'
              AND to_date(substr(c.relname, 13), 'YYYYMMDD') + 1 < now() - $1::bigint * interval '1 millisecond'
            """, [retentionMillis], name: "expired legacy days").rows.compactMap { $0[0] }
        for day in days {
            removal.lockRetries += try patience.run(on: session) { () throws(PostgresError) in
                try session.execute("DROP TABLE \(day)", name: "drop legacy day")
            }.attempts - 1
            removal.legacyPartitionsDropped += 1
        }
        removal.rowsDeleted += try session.query(
            "DELETE FROM task_events_legacy_default WHERE at < now() - $1::bigint * interval '1 millisecond'",
            [retentionMillis], name: "prune legacy events").affected
        let left = try session.query("""
            SELECT count(*) FROM pg_inherits WHERE inhparent = 'task_events_legacy'::regclass
              AND inhrelid <> 'task_events_legacy_default'::regclass
            """, name: "legacy days left").rows.first?[0]
        if left == "0", try session.query("SELECT NOT EXISTS (SELECT 1 FROM task_events_legacy)", name: "legacy empty?").rows.first?[0] == "t" {
            removal.lockRetries += try patience.run(on: session) { () throws(PostgresError) in
                try session.execute("DROP TABLE task_events_legacy", name: "drop legacy events")
            }.attempts - 1
        }
    }
}
