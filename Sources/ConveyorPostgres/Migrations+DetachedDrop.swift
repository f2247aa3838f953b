extension Migrations {
    /// Migration 11 (issue 17): a generation is detached under the partitioned tables' locks and its
    /// tables are dropped after those locks are released.
    ///
    /// Every statement on `tasks`, a submission's insert among them, waits while a drop holds the
    /// parents' ACCESS EXCLUSIVE locks. Dropping four tables with their indexes inside that window, with
    /// the durable commit a drop forces, was about half of it (a 17,000-task generation on an idle server:
    /// 15–19 ms under the locks, 7–14 ms without the DROP). So `conveyor_detach_generation` detaches, moves
    /// the kept tasks (read from the detached tables, where `conveyor_drop_generation` first copied them
    /// into three temporary tables) and records the detached generation in
    /// `conveyor_detached_generations`, in one transaction that commits without waiting for its WAL
    /// (``GenerationStore``); `conveyor_drop_detached_generations()` then drops the recorded tables in a
    /// transaction of its own, including any a crash left recorded between the two.
    ///
    /// `conveyor_drop_generation` stays as it was: a coordinator of an earlier version still drops what it
    /// detaches, during a rolling upgrade and after a rollback.
    static let detachedDropSQL = """
        CREATE TABLE conveyor_detached_generations (
            number      bigint PRIMARY KEY,
            detached_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE FUNCTION conveyor_detach_generation(number bigint, kept bigint[]) RETURNS bigint
            LANGUAGE plpgsql AS $$
            DECLARE
                tasks_part text := 'tasks_g' || number;
                events_part text := 'task_events_g' || number;
                tags_part text := 'task_tags_g' || number;
                attention_part text := 'task_attention_g' || number;
                kept_ids bigint[];
                moved bigint;
            BEGIN
                PERFORM pg_advisory_xact_lock(\(generationLockKey));
                IF NOT EXISTS (SELECT 1 FROM conveyor_generations g WHERE g.number = conveyor_detach_generation.number AND g.closed_at IS NOT NULL) THEN
                    RETURN -1;
                END IF;
                LOCK TABLE ONLY task_events, ONLY tasks, ONLY task_tags, ONLY task_attention IN ACCESS EXCLUSIVE MODE;
                EXECUTE format('ALTER TABLE task_events DETACH PARTITION %I', events_part);
                EXECUTE format('ALTER TABLE tasks DETACH PARTITION %I', tasks_part);
                EXECUTE format('ALTER TABLE task_tags DETACH PARTITION %I', tags_part);
                EXECUTE format('ALTER TABLE task_attention DETACH PARTITION %I', attention_part);
                -- The kept rows, read from the detached tables (no copy aside first) and routed into the
                -- default partitions: no generation covers their ids any more.
                EXECUTE format('SELECT coalesce(array_agg(id), ''{}'') FROM %I WHERE id = ANY($1) OR NOT dispatched', tasks_part)
                    INTO kept_ids USING kept;
                moved := cardinality(kept_ids);
                IF moved > 0 THEN
                    EXECUTE format('INSERT INTO tasks SELECT * FROM %I WHERE id = ANY($1)', tasks_part) USING kept_ids;
                    EXECUTE format('INSERT INTO task_events SELECT * FROM %I WHERE task_id = ANY($1)', events_part) USING kept_ids;
                    EXECUTE format('INSERT INTO task_tags SELECT * FROM %I WHERE task_id = ANY($1)', tags_part) USING kept_ids;
                    INSERT INTO task_attention (status, task_id)
                        SELECT t.status, t.id FROM tasks t WHERE t.id = ANY(kept_ids) AND t.status IN \(attentionStatuses);
                END IF;
                DELETE FROM conveyor_generations g WHERE g.number = conveyor_detach_generation.number;
                INSERT INTO conveyor_detached_generations (number) VALUES (conveyor_detach_generation.number);
                RETURN moved;
            END
            $$;

        -- A generation number is never opened again once closed (a later one exists), so the recorded
        -- names can only be the detached tables.
        CREATE FUNCTION conveyor_drop_detached_generations() RETURNS integer
            LANGUAGE plpgsql AS $$
            DECLARE
                detached bigint;
                dropped integer := 0;
            BEGIN
                FOR detached IN SELECT d.number FROM conveyor_detached_generations d ORDER BY d.number LOOP
                    EXECUTE format('DROP TABLE IF EXISTS %I, %I, %I, %I', 'task_events_g' || detached, 'tasks_g' || detached,
                                   'task_tags_g' || detached, 'task_attention_g' || detached);
                    DELETE FROM conveyor_detached_generations d WHERE d.number = detached;
                    dropped := dropped + 1;
                END LOOP;
                RETURN dropped;
            END
            $$;
        """
}
