extension Migrations {
    /// Search (issue 15): what lets people find tasks (`GET /v1/tasks`, the console) at a cost that does
    /// not grow with the table, and the function that turns a time into an id bound.
    ///
    /// Every index of `tasks` is paid twice per task: at its insert, and again at its first recorded
    /// event, whose update flips `dispatched` (in `tasks_undispatched`'s predicate) and so is never HOT.
    /// Measured at the ceiling (one update per task, none HOT): btree indexes on (queue, type, id) and
    /// (correlation_id, id) grew to 39 and 59 MB per 500,000 tasks beside the primary key's 22 MB and cost
    /// 7 to 10 % of the throughput; a hash index on the correlation id as much; a side table of request
    /// ranges written in the submission's transaction cost single POSTs 12 to 15 %. So:
    /// - `tasks_correlation (correlation_id, id) WHERE dispatched`: a task enters it once, at that first
    ///   non-HOT update (in the Recorder's batch, off the submit path), never at its insert. Tasks not
    ///   dispatched yet (the backlog) are found through `tasks_undispatched`, the newest first.
    /// - No index on queue or type: the search walks the primary key newest first with a bounded number
    ///   of candidates per page (`TaskSearchPlan.candidateBudget`).
    /// - Statuses: an index naming `status`, even a partial one, would make the updates that could be
    ///   HOT (a later event of a slow task) non-HOT too. The few statuses people look for (scheduled,
    ///   retrying, failed, dead, cancelled, skipped) are kept in `task_attention (status, task_id)` by a
    ///   trigger whose `WHEN` fires only on a change into or out of them: a task that runs and succeeds
    ///   never calls it. Inserts go there from the code that inserts such a task (a scheduled submission;
    ///   retention's re-insert of kept tasks), not from a trigger on every COPY row. Partitioned like
    ///   `tasks`, so retention drops a generation's rows with its tasks.
    static let searchSQL = """
        CREATE INDEX tasks_correlation ON tasks (correlation_id, id) WHERE dispatched;

        CREATE TABLE task_attention (
            status  text NOT NULL,
            task_id bigint NOT NULL,
            PRIMARY KEY (status, task_id)
        ) PARTITION BY RANGE (task_id);
        CREATE TABLE task_attention_default PARTITION OF task_attention DEFAULT;
        DO $$
        DECLARE
            generation record;
        BEGIN
            FOR generation IN
                SELECT g.number, pg_get_expr(c.relpartbound, c.oid) AS bound
                FROM conveyor_generations g JOIN pg_class c ON c.relname = 'tasks_g' || g.number
            LOOP
                EXECUTE format('CREATE TABLE %I PARTITION OF task_attention %s', 'task_attention_g' || generation.number, generation.bound);
            END LOOP;
        END
        $$;
        INSERT INTO task_attention (status, task_id)
            SELECT status, id FROM tasks WHERE status IN \(attentionStatuses);

        CREATE FUNCTION conveyor_track_attention() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'UPDATE' AND OLD.status IN \(attentionStatuses) THEN
                    DELETE FROM task_attention WHERE status = OLD.status AND task_id = OLD.id;
                END IF;
                IF NEW.status IN \(attentionStatuses) THEN
                    INSERT INTO task_attention (status, task_id) VALUES (NEW.status, NEW.id) ON CONFLICT DO NOTHING;
                END IF;
                RETURN NULL;
            END
            $$;
        -- The WHEN clause is checked on the row in C: a change between other statuses costs no call.
        CREATE TRIGGER tasks_attention_update AFTER UPDATE OF status ON tasks FOR EACH ROW
            WHEN (OLD.status IS DISTINCT FROM NEW.status AND (OLD.status IN \(attentionStatuses) OR NEW.status IN \(attentionStatuses)))
            EXECUTE FUNCTION conveyor_track_attention();

        -- Opening and dropping a generation now covers task_attention too (see migrations 4 and 5); a kept
        -- task in one of its statuses is filed again in the default partition.
        CREATE OR REPLACE FUNCTION conveyor_open_generation(number bigint) RETURNS boolean
            LANGUAGE plpgsql AS $$
            DECLARE
                width constant bigint := \(generationWidth);
                tasks_part text := 'tasks_g' || number;
                events_part text := 'task_events_g' || number;
                tags_part text := 'task_tags_g' || number;
                attention_part text := 'task_attention_g' || number;
            BEGIN
                PERFORM pg_advisory_xact_lock(\(generationLockKey));
                IF EXISTS (SELECT 1 FROM conveyor_generations g WHERE g.number >= conveyor_open_generation.number) THEN
                    RETURN false;
                END IF;
                EXECUTE format('CREATE TABLE %I (LIKE task_events INCLUDING ALL)', events_part);
                EXECUTE format('CREATE TABLE %I (LIKE tasks INCLUDING ALL) WITH (fillfactor = 80)', tasks_part);
                EXECUTE format('CREATE TABLE %I (LIKE task_tags INCLUDING ALL)', tags_part);
                EXECUTE format('CREATE TABLE %I (LIKE task_attention INCLUDING ALL)', attention_part);
                EXECUTE format('ALTER TABLE task_events ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                               events_part, number * width, (number + 1) * width);
                EXECUTE format('ALTER TABLE tasks ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                               tasks_part, number * width, (number + 1) * width);
                EXECUTE format('ALTER TABLE task_tags ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                               tags_part, number * width, (number + 1) * width);
                EXECUTE format('ALTER TABLE task_attention ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                               attention_part, number * width, (number + 1) * width);
                INSERT INTO conveyor_generations (number, first_id) VALUES (number, number * width);
                RETURN true;
            END
            $$;

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
                EXECUTE format('DROP TABLE %I, %I, %I, %I', events_part, tasks_part, tags_part, attention_part);
                INSERT INTO task_events SELECT * FROM conveyor_kept_events;
                INSERT INTO tasks SELECT * FROM conveyor_kept_tasks;
                INSERT INTO task_tags SELECT * FROM conveyor_kept_tags;
                INSERT INTO task_attention (status, task_id)
                    SELECT status, id FROM conveyor_kept_tasks WHERE status IN \(attentionStatuses);
                DELETE FROM conveyor_generations g WHERE g.number = conveyor_drop_generation.number;
                RETURN moved;
            END
            $$;

        -- An id bound for a creation time, found by bisecting the primary key (about 35 probes of one
        -- index entry each). Ids rise with time but not strictly: a coordinator hands out a reserved
        -- block of ids for up to `slack` (TaskIDAllocator.maximumBlockAge plus clock skew between
        -- coordinators). So a row created `slack` after `at` comes from a block reserved after `at`,
        -- and every id from it on was created after `at`; a row created `slack` before `at` has every
        -- id up to it created before `at`.
        --   upper = true:  an id U such that every task with id >= U was created at or after `at`.
        --   upper = false: an id L such that every task with id <= L was created before `at`.
        CREATE FUNCTION conveyor_task_id_bound(at timestamptz, upper boolean, slack interval) RETURNS bigint
            LANGUAGE plpgsql STABLE AS $$
            DECLARE
                lo bigint;
                hi bigint;
                mid bigint;
                seen timestamptz;
            BEGIN
                SELECT min(id), max(id) INTO lo, hi FROM tasks;
                IF lo IS NULL THEN
                    RETURN 0;
                END IF;
                IF upper THEN
                    -- Invariant: hi is a valid bound (past the last id, vacuously).
                    hi := hi + 1;
                    lo := lo - 1;
                    WHILE hi - lo > 1 LOOP
                        mid := lo + (hi - lo) / 2;
                        SELECT created_at INTO seen FROM tasks WHERE id >= mid ORDER BY id LIMIT 1;
                        IF seen >= at + slack THEN hi := mid; ELSE lo := mid; END IF;
                    END LOOP;
                    RETURN hi;
                ELSE
                    -- Invariant: lo is a valid bound (before the first id, vacuously).
                    lo := lo - 1;
                    WHILE hi - lo > 1 LOOP
                        mid := lo + (hi - lo) / 2;
                        SELECT created_at INTO seen FROM tasks WHERE id <= mid ORDER BY id DESC LIMIT 1;
                        IF seen < at - slack THEN lo := mid; ELSE hi := mid; END IF;
                    END LOOP;
                    RETURN lo;
                END IF;
            END
            $$;
        """

    /// The statuses `task_attention` holds, as an SQL list (the same set as `TaskSearchPlan.attentionStatuses`).
    static let attentionStatuses = "('scheduled', 'retrying', 'failed', 'dead', 'cancelled', 'skipped')"
}
