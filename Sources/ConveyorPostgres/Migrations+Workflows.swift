extension Migrations {
    /// Workflows (issue 14): the workflow rows, one edge row per dependency, the node columns of `tasks`,
    /// and the two functions that carry a workflow forward inside the caller's transaction.
    static let workflowsSQL = """
        -- `waiting` ranks below everything an event can bring; `skipped` is terminal.
        CREATE OR REPLACE FUNCTION conveyor_progress(status text, attempt integer) RETURNS bigint
            LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
            SELECT CASE
                WHEN status IN ('succeeded', 'failed', 'dead', 'cancelled', 'skipped') THEN 1000000000::bigint
                WHEN status = 'running' THEN attempt::bigint * 10 + 1
                WHEN status = 'retrying' THEN attempt::bigint * 10 + 2
                WHEN status = 'scheduled' THEN attempt::bigint * 10 - 1
                WHEN status = 'waiting' THEN attempt::bigint * 10 - 2
                ELSE attempt::bigint * 10
            END
        $$;

        CREATE SEQUENCE conveyor_workflow_ids;

        -- A workflow's status is `running` until every node has ended, then its outcome. It is written
        -- when a node's end is recorded (after that transaction commits) and never holds a lock across a
        -- batch: the join below locks only the child rows it decrements.
        CREATE TABLE workflows (
            id              bigint PRIMARY KEY,
            name            text NOT NULL,
            status          text NOT NULL,
            correlation_id  text NOT NULL,
            idempotency_key text,
            submitted_by    text,
            node_count      integer NOT NULL,
            created_at      timestamptz NOT NULL,
            updated_at      timestamptz NOT NULL,
            finished_at     timestamptz
        );
        CREATE UNIQUE INDEX workflows_idempotency_key ON workflows (idempotency_key) WHERE idempotency_key IS NOT NULL;
        CREATE INDEX workflows_running ON workflows (id) WHERE status = 'running';
        CREATE INDEX workflows_name ON workflows (name, id);
        CREATE INDEX workflows_status ON workflows (status, id);

        -- One row per dependency: `child` starts once `parent` (and its other parents) ended.
        CREATE TABLE workflow_edges (
            workflow_id bigint NOT NULL,
            parent      bigint NOT NULL,
            child       bigint NOT NULL,
            PRIMARY KEY (parent, child)
        );
        CREATE INDEX workflow_edges_child ON workflow_edges (child);
        CREATE INDEX workflow_edges_workflow ON workflow_edges (workflow_id);

        -- A node is a task with these set (NULL for a plain task, which therefore pays nothing):
        -- `waiting_on` counts its dependencies that have not ended, `failed_deps` those that ended
        -- without succeeding. Neither is indexed, so their updates stay HOT.
        ALTER TABLE tasks ADD COLUMN workflow_id bigint, ADD COLUMN node_key text,
            ADD COLUMN waiting_on integer, ADD COLUMN failed_deps integer, ADD COLUMN on_dependency_failure text;
        CREATE INDEX tasks_workflow ON tasks (workflow_id, id) WHERE workflow_id IS NOT NULL;

        -- The join. Called in the transaction that made the nodes `ended` terminal (the merge is
        -- forward-only, so a parent ends once per run; a retry or a redrive re-opens it and re-counts
        -- its waiting children first, see below). Each child along their edges is decremented once per
        -- ended parent; the child rows are locked in id order first (two batches never deadlock on one
        -- level) and the decrement re-reads the newest row version, so of two transactions that end a
        -- child's last two parents, the one that commits second sees zero: the child is decided exactly
        -- once. A child whose parents have all ended is queued (all succeeded, or policy `run`), skipped
        -- or failed without running; the last two end in turn and cascade to their own children. Each
        -- decision is appended to the task's history (one event per decision: its id carries the
        -- transaction, so a second decision would show). Returns every decided node.
        -- Every read of `tasks` here is bounded by a list of ids (`= ANY`), read by primary key, and
        -- the join method is left to the planner: without statistics on freshly written rows it
        -- guessed a few waiting rows and scanned them all once per child, a nested loop of 10,000 by
        -- 10,000 (a fan-out's root took 4 s). Hence, for these functions only, index scans and hash
        -- joins even inside the Recorder's merge transaction, which turns hash joins off.
        CREATE FUNCTION conveyor_workflow_settle(ended bigint[])
            RETURNS TABLE (task_id bigint, task_status text, task_workflow bigint, has_callback boolean)
            LANGUAGE plpgsql SET enable_seqscan = off SET enable_hashjoin = on SET enable_mergejoin = on AS $$
            #variable_conflict use_column
            DECLARE
                frontier bigint[] := ended;
                children bigint[];
                ends integer[];
                fails integer[];
                ids bigint[];
                statuses text[];
                workflows bigint[];
                attempts integer[];
                cids text[];
                callbacks boolean[];
            BEGIN
                WHILE cardinality(frontier) > 0 LOOP
                    SELECT coalesce(array_agg(h.child ORDER BY h.child), '{}'), coalesce(array_agg(h.n ORDER BY h.child), '{}'),
                           coalesce(array_agg(h.bad ORDER BY h.child), '{}')
                      INTO children, ends, fails
                      FROM (SELECT e.child, count(*)::integer AS n, (count(*) FILTER (WHERE p.status <> 'succeeded'))::integer AS bad
                            FROM workflow_edges e JOIN tasks p ON p.id = e.parent
                            WHERE e.parent = ANY(frontier) AND p.id = ANY(frontier) GROUP BY e.child) h;
                    EXIT WHEN cardinality(children) = 0;
                    PERFORM 1 FROM tasks c WHERE c.id = ANY(children) AND c.status = 'waiting' ORDER BY c.id FOR UPDATE;
                    WITH moved AS (
                        UPDATE tasks c SET
                            waiting_on = c.waiting_on - h.n,
                            failed_deps = c.failed_deps + h.bad,
                            status = CASE
                                WHEN c.waiting_on - h.n > 0 THEN 'waiting'
                                WHEN c.failed_deps + h.bad = 0 OR c.on_dependency_failure = 'run' THEN 'queued'
                                WHEN c.on_dependency_failure = 'skip' THEN 'skipped'
                                ELSE 'failed' END,
                            dispatched = NOT (c.waiting_on - h.n <= 0 AND (c.failed_deps + h.bad = 0 OR c.on_dependency_failure = 'run')),
                            updated_at = CASE WHEN c.waiting_on - h.n > 0 THEN c.updated_at ELSE clock_timestamp() END,
                            finished_at = CASE WHEN c.waiting_on - h.n <= 0 AND c.failed_deps + h.bad > 0
                                AND c.on_dependency_failure <> 'run' THEN clock_timestamp() END,
                            error = CASE WHEN c.waiting_on - h.n <= 0 AND c.failed_deps + h.bad > 0
                                AND c.on_dependency_failure <> 'run' THEN 'a dependency did not succeed' END
                        FROM unnest(children, ends, fails) AS h(child, n, bad)
                        WHERE c.id = h.child AND c.id = ANY(children) AND c.status = 'waiting'
                        RETURNING c.id, c.status, c.workflow_id, c.attempts, c.correlation_id, c.callback_url IS NOT NULL AS cb
                    )
                    SELECT coalesce(array_agg(m.id), '{}'), coalesce(array_agg(m.status), '{}'), coalesce(array_agg(m.workflow_id), '{}'),
                           coalesce(array_agg(m.attempts), '{}'), coalesce(array_agg(m.correlation_id), '{}'), coalesce(array_agg(m.cb), '{}')
                      INTO ids, statuses, workflows, attempts, cids, callbacks
                      FROM moved m WHERE m.status <> 'waiting';
                    INSERT INTO task_events (event_id, task_id, status, attempt, agent, at, detail)
                    SELECT s.id || '-' || s.attempt || '-' || s.status || '-dep-' || txid_current(), s.id, s.status, s.attempt, 'workflow',
                           date_trunc('milliseconds', clock_timestamp()),
                           jsonb_strip_nulls(jsonb_build_object('cid', s.cid,
                               'error', CASE WHEN s.status <> 'queued' THEN 'a dependency did not succeed' END))
                    FROM unnest(ids, statuses, attempts, cids) AS s(id, status, attempt, cid)
                    ON CONFLICT DO NOTHING;
                    RETURN QUERY SELECT * FROM unnest(ids, statuses, workflows, callbacks);
                    frontier := ARRAY(SELECT x.id FROM unnest(ids, statuses) AS x(id, status) WHERE x.status <> 'queued');
                END LOOP;
            END
            $$;

        -- Re-opens ended nodes (`nodes`: a workflow's retry, or the nodes a redriven dead node had
        -- failed or skipped; `also`: the redriven nodes themselves, already queued again): each gets a
        -- fresh budget of attempts (as many as its last run had), drops its old attempts' late events
        -- (the redrive floor) and waits again for its dependencies that have not ended, counting those
        -- that ended without succeeding. The children still waiting on any of them are counted again
        -- too. A node with none left is queued (or, in a case a retry cannot produce, ended by its
        -- policy, which the join then carries on). Its workflow is running again. Returns the nodes it
        -- queued or ended, as the join does.
        CREATE FUNCTION conveyor_workflow_reopen(nodes bigint[], also bigint[])
            RETURNS TABLE (task_id bigint, task_status text, task_workflow bigint, has_callback boolean)
            LANGUAGE plpgsql SET enable_seqscan = off AS $$
            #variable_conflict use_column
            DECLARE
                recount bigint[];
                ids bigint[];
                statuses text[];
                workflows bigint[];
                callbacks boolean[];
            BEGIN
                -- What is counted again: the re-opened nodes, and the children of every re-opened or
                -- redriven node that still wait (their count took that node as ended).
                recount := nodes || ARRAY(
                    SELECT k.id FROM tasks k
                    WHERE k.id IN (SELECT x.child FROM workflow_edges x WHERE x.parent = ANY(nodes || also))
                      AND k.status = 'waiting' AND NOT k.id = ANY(nodes));
                -- Parents first, then the counted rows, each in id order: the join locks a parent (its
                -- merge) before its children, so the two never wait on each other in a cycle; and a
                -- parent that is ending now is counted once it has.
                PERFORM 1 FROM tasks p WHERE p.id IN (SELECT x.parent FROM workflow_edges x WHERE x.child = ANY(recount))
                    ORDER BY p.id FOR SHARE;
                PERFORM 1 FROM tasks k WHERE k.id = ANY(recount) ORDER BY k.id FOR UPDATE;
                -- A fresh budget of attempts; the floor drops the old attempts' late events. A cancelled
                -- node may still have its next attempt in Redis (queued, or waiting out a backoff): it
                -- is skipped over too, so the stale one's events are dropped and the new one differs.
                UPDATE tasks t SET status = 'waiting', finished_at = NULL, started_at = NULL, error = NULL, result = NULL, progress = NULL,
                    attempts = t.attempts + CASE WHEN t.status = 'cancelled' THEN 1 ELSE 0 END,
                    redrive_floor = t.attempts + CASE WHEN t.status = 'cancelled' THEN 1 ELSE 0 END,
                    max_attempts = t.attempts + CASE WHEN t.status = 'cancelled' THEN 1 ELSE 0 END
                        + greatest(t.max_attempts - t.redrive_floor, 1),
                    dispatched = true, updated_at = clock_timestamp()
                WHERE t.id = ANY(nodes) AND t.workflow_id IS NOT NULL;
                WITH counts AS (
                    SELECT e.child AS id,
                           count(*) FILTER (WHERE p.status NOT IN ('succeeded', 'failed', 'dead', 'cancelled', 'skipped'))::integer AS open,
                           count(*) FILTER (WHERE p.status IN ('failed', 'dead', 'cancelled', 'skipped'))::integer AS bad
                    FROM workflow_edges e JOIN tasks p ON p.id = e.parent
                    WHERE e.child = ANY(recount)
                      AND p.id IN (SELECT x.parent FROM workflow_edges x WHERE x.child = ANY(recount))
                    GROUP BY e.child
                ), moved AS (
                    UPDATE tasks t SET waiting_on = coalesce(c.open, 0), failed_deps = coalesce(c.bad, 0),
                        status = CASE
                            WHEN coalesce(c.open, 0) > 0 THEN 'waiting'
                            WHEN coalesce(c.bad, 0) = 0 OR t.on_dependency_failure = 'run' THEN 'queued'
                            WHEN t.on_dependency_failure = 'skip' THEN 'skipped'
                            ELSE 'failed' END,
                        dispatched = NOT (coalesce(c.open, 0) = 0 AND (coalesce(c.bad, 0) = 0 OR t.on_dependency_failure = 'run')),
                        finished_at = CASE WHEN coalesce(c.open, 0) = 0 AND coalesce(c.bad, 0) > 0 AND t.on_dependency_failure <> 'run'
                            THEN clock_timestamp() END,
                        error = CASE WHEN coalesce(c.open, 0) = 0 AND coalesce(c.bad, 0) > 0 AND t.on_dependency_failure <> 'run'
                            THEN 'a dependency did not succeed' END
                    FROM unnest(recount) AS r(id) LEFT JOIN counts c ON c.id = r.id
                    WHERE t.id = r.id AND t.id = ANY(recount) AND t.status = 'waiting'
                    RETURNING t.id, t.status, t.workflow_id, t.callback_url IS NOT NULL AS cb
                )
                SELECT coalesce(array_agg(m.id), '{}'), coalesce(array_agg(m.status), '{}'), coalesce(array_agg(m.workflow_id), '{}'),
                       coalesce(array_agg(m.cb), '{}')
                  INTO ids, statuses, workflows, callbacks
                  FROM moved m WHERE m.status <> 'waiting';
                RETURN QUERY SELECT * FROM unnest(ids, statuses, workflows, callbacks);
                UPDATE workflows w SET status = 'running', finished_at = NULL, updated_at = clock_timestamp()
                WHERE w.id IN (SELECT t.workflow_id FROM tasks t WHERE t.id = ANY(nodes)) AND w.status <> 'running';
                -- Nodes ended at once (a case a retry cannot produce) carry the join on like any end.
                ids := ARRAY(SELECT x.id FROM unnest(ids, statuses) AS x(id, status) WHERE x.status <> 'queued');
                IF cardinality(ids) > 0 THEN
                    RETURN QUERY SELECT * FROM conveyor_workflow_settle(ids);
                END IF;
            END
            $$;
        """
}
