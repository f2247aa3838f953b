extension Migrations {
    /// Migration 11 (issue 17): a generation is detached under the partitioned tables' locks and dropped
    /// after they are released.
    ///
    /// Every statement on `tasks`, a submission's insert among them, waits while a drop holds the
    /// parents' ACCESS EXCLUSIVE locks. Dropping four tables with their indexes inside that window, and
    /// the durable commit a drop forces, was about half of it (a 17,000-task generation: 26 ms under the
    /// locks, of which the DROP and its commit took 10). Now `conveyor_drop_generation` only detaches
    /// (and moves the kept tasks), its transaction commits without waiting for the WAL
    /// (``GenerationStore``), and `conveyor_drop_detached_generations()` drops every detached
    /// generation table in a transaction of its own, including any a crash left between the two.
    static let detachedDropSQL = """
        CREATE OR REPLACE FUNCTION conveyor_drop_generation(number bigint, kept bigint[]) RETURNS bigint
            LANGUAGE plpgsql AS $$
            DECLARE
                tasks_part text := 'tasks_g' || number;
                events_part text := 'task_events_g' || number;
                tags_part text := 'task_tags_g' || number;
                attention_part text := 'task_attention_g' || number;
                moved bigint;
            BEGIN
                PERFORM pg_advisory_xact_lock(\(generationLockKey));
                IF NOT EXISTS (SELECT 1 FROM conveyor_generations g WHERE g.number = conveyor_drop_generation.number AND g.closed_at IS NOT NULL) THEN
                    RETURN -1;
                END IF;
                LOCK TABLE ONLY task_events, ONLY tasks, ONLY task_tags, ONLY task_attention IN ACCESS EXCLUSIVE MODE;
                EXECUTE format('CREATE TEMP TABLE conveyor_kept_tasks ON COMMIT DROP AS SELECT * FROM %I WHERE id = ANY($1) OR NOT dispatched', tasks_part) USING kept;
                GET DIAGNOSTICS moved = ROW_COUNT;
                EXECUTE format('CREATE TEMP TABLE conveyor_kept_events ON COMMIT DROP AS SELECT * FROM %I WHERE task_id IN (SELECT id FROM conveyor_kept_tasks)', events_part);
                EXECUTE format('CREATE TEMP TABLE conveyor_kept_tags ON COMMIT DROP AS SELECT * FROM %I WHERE task_id IN (SELECT id FROM conveyor_kept_tasks)', tags_part);
                EXECUTE format('ALTER TABLE task_events DETACH PARTITION %I', events_part);
                EXECUTE format('ALTER TABLE tasks DETACH PARTITION %I', tasks_part);
                EXECUTE format('ALTER TABLE task_tags DETACH PARTITION %I', tags_part);
                EXECUTE format('ALTER TABLE task_attention DETACH PARTITION %I', attention_part);
                INSERT INTO task_events SELECT * FROM conveyor_kept_events;
                INSERT INTO tasks SELECT * FROM conveyor_kept_tasks;
                INSERT INTO task_tags SELECT * FROM conveyor_kept_tags;
                INSERT INTO task_attention (status, task_id)
                    SELECT status, id FROM conveyor_kept_tasks WHERE status IN \(attentionStatuses);
                DELETE FROM conveyor_generations g WHERE g.number = conveyor_drop_generation.number;
                RETURN moved;
            END
            $$;

        -- Generation tables exist only attached: an open creates and attaches them in one transaction,
        -- so a plain table of these names is one that conveyor_drop_generation detached.
        CREATE FUNCTION conveyor_drop_detached_generations() RETURNS integer
            LANGUAGE plpgsql AS $$
            DECLARE
                detached regclass;
                dropped integer := 0;
            BEGIN
                FOR detached IN
                    SELECT c.oid::regclass FROM pg_class c
                    WHERE c.relkind = 'r' AND NOT c.relispartition AND c.relnamespace = current_schema()::regnamespace
                      AND c.relname ~ '^(tasks|task_events|task_tags|task_attention)_g[0-9]+$'
                LOOP
                    EXECUTE format('DROP TABLE %s', detached);
                    dropped := dropped + 1;
                END LOOP;
                RETURN dropped;
            END
            $$;
        """
}
