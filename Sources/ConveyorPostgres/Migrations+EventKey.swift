extension Migrations {
    /// Migration 10 (issue 17): `task_events` keyed by one unique index on `(task_id, event_id)` instead
    /// of the primary key `(event_id, task_id)` plus an index on `task_id`.
    ///
    /// Every event paid two btree inserts, and the second index only repeated what a key led by the task
    /// serves: a task's history is one range of it, and a replay still collides on it (event ids are
    /// deterministic). Measured on this machine, 600-event COPY batches of a `running` and a `succeeded`
    /// event per task into one generation: 13–16 µs per task before, 9–13 after, and the partition 80 MB
    /// instead of 111 MB per 300,000 tasks.
    ///
    /// A unique index rather than a primary key: created on the partitioned table, it attaches an equal
    /// index a partition already has instead of building one, so a large history can be indexed
    /// beforehand with `CREATE UNIQUE INDEX CONCURRENTLY` per partition (docs/operations.md) and this
    /// migration then holds the table's lock for moments. Without that it builds the index on every
    /// partition under the lock (about 1.4 million events a second here).
    static let eventKeySQL = """
        CREATE UNIQUE INDEX task_events_key ON task_events (task_id, event_id);
        ALTER TABLE task_events DROP CONSTRAINT task_events_pkey;
        DROP INDEX task_events_task_id;
        """
}
