extension Migrations {
    /// Search (issue 15): the indexes that let people find tasks (`GET /v1/tasks`, the console) at a
    /// cost that does not grow with the table, and the function that turns a time into an id bound.
    ///
    /// Every index of `tasks` is paid on each insert and opened by every Recorder merge, so there are
    /// three, each for a filter that has no cheaper answer (see `TaskSearchPlan`):
    /// - `tasks_kind (queue, type, id)`: a queue or a type, newest first. Neither column ever changes,
    ///   so status updates stay HOT as far as this index goes; a new row appends to its (queue, type) range.
    /// - `tasks_correlation (correlation_id, id)`: a request's tasks (a batch shares one id, so its rows
    ///   append side by side).
    /// - `tasks_attention (status, id)`, partial, for the statuses people look for and that are few:
    ///   scheduled, retrying, failed, dead, cancelled, skipped. A task that runs and succeeds never
    ///   enters it. The bulk states (queued, running, succeeded) are found walking the primary key,
    ///   where they are the newest rows.
    static let searchSQL = """
        CREATE INDEX tasks_kind ON tasks (queue, type, id);
        CREATE INDEX tasks_correlation ON tasks (correlation_id, id);
        CREATE INDEX tasks_attention ON tasks (status, id)
            WHERE status IN ('scheduled', 'retrying', 'failed', 'dead', 'cancelled', 'skipped');

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
}
