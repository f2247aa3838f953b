/// One versioned schema change.
public struct Migration: Sendable, Hashable {
    public var version: Int
    public var name: String
    public var sql: String
}

/// The schema, as an ordered list of migrations. Kept in Swift rather than resource files so the single
/// `conveyor` binary carries its own schema. Never edit a released migration: append a new one.
public enum Migrations {
    /// Ids are allocated in blocks of this many: one `nextval` per block instead of per task.
    public static let idBlockSize: Int64 = 1000

    public static let all: [Migration] = [
        Migration(version: 1, name: "tasks and task_events", sql: """
            CREATE SEQUENCE conveyor_task_ids INCREMENT BY \(idBlockSize) START WITH 1;

            -- The same order as TaskStatus.progress(attempt:) in Swift: the Recorder only applies an event
            -- whose progress is greater than the task's, so a task's state never moves backwards.
            CREATE FUNCTION conveyor_progress(status text, attempt integer) RETURNS bigint
                LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
                SELECT CASE
                    WHEN status IN ('succeeded', 'failed', 'dead', 'cancelled') THEN 1000000000::bigint
                    WHEN status = 'running' THEN attempt::bigint * 10 + 1
                    WHEN status = 'retrying' THEN attempt::bigint * 10 + 2
                    ELSE attempt::bigint * 10
                END
            $$;

            CREATE TABLE tasks (
                id              bigint PRIMARY KEY,
                type            text NOT NULL,
                queue           text NOT NULL,
                status          text NOT NULL,
                params          jsonb NOT NULL,
                correlation_id  text NOT NULL,
                idempotency_key text,
                attempts        integer NOT NULL DEFAULT 0,
                max_attempts    integer NOT NULL,
                created_at      timestamptz NOT NULL,
                updated_at      timestamptz NOT NULL,
                started_at      timestamptz,
                finished_at     timestamptz,
                result          jsonb,
                error           text,
                dispatched      boolean NOT NULL DEFAULT false
            ) WITH (fillfactor = 80);
            -- Few indexes on purpose: every one is paid on each insert. Partial, so keyless tasks cost nothing.
            CREATE UNIQUE INDEX tasks_idempotency_key ON tasks (idempotency_key) WHERE idempotency_key IS NOT NULL;

            -- Append-only history, partitioned by day so old history is dropped by partition, not DELETE.
            -- The primary key includes the partition key; event ids are deterministic, so a replay collides.
            CREATE TABLE task_events (
                event_id text NOT NULL,
                task_id  bigint NOT NULL,
                status   text NOT NULL,
                attempt  integer NOT NULL,
                agent    text NOT NULL,
                at       timestamptz NOT NULL,
                detail   jsonb,
                PRIMARY KEY (event_id, at)
            ) PARTITION BY RANGE (at);
            CREATE INDEX task_events_task_id ON task_events (task_id);
            CREATE TABLE task_events_default PARTITION OF task_events DEFAULT;

            -- Creates the daily partitions from yesterday to `days_ahead` days from now. A day whose rows
            -- already sit in the default partition cannot get its own; it is skipped with a warning so
            -- the later days are still created.
            CREATE FUNCTION conveyor_ensure_event_partitions(days_ahead integer) RETURNS void
                LANGUAGE plpgsql AS $$
                DECLARE
                    day date;
                BEGIN
                    FOR day IN SELECT generate_series(current_date - 1, current_date + days_ahead, interval '1 day')::date LOOP
                        BEGIN
                            EXECUTE format(
                                'CREATE TABLE IF NOT EXISTS %I PARTITION OF task_events FOR VALUES FROM (%L) TO (%L)',
                                'task_events_' || to_char(day, 'YYYYMMDD'), day, day + 1);
                        EXCEPTION WHEN others THEN
                            RAISE WARNING 'task_events partition for % not created: %', day, SQLERRM;
                        END;
                    END LOOP;
                END
            $$;
            SELECT conveyor_ensure_event_partitions(3);
            """),
        Migration(version: 2, name: "reconciler", sql: """
            -- Tasks no agent has reported on yet. The Reconciler looks here for rows committed but never
            -- dispatched (a coordinator died between COMMIT and XADD). Rows leave the index at their first
            -- recorded event, so it holds the backlog only, never history.
            CREATE INDEX tasks_undispatched ON tasks (created_at) WHERE NOT dispatched;

            -- A redrive starts a task over from `queued`: events of the attempts before it (a late replay of
            -- the old `dead` event, say) must not apply any more. The merge ignores attempts up to here.
            ALTER TABLE tasks ADD COLUMN redrive_floor integer NOT NULL DEFAULT 0;

            -- Small facts the coordinators share, such as which Redis the tasks were last reconciled against.
            CREATE TABLE conveyor_meta (
                key        text PRIMARY KEY,
                value      text NOT NULL,
                updated_at timestamptz NOT NULL DEFAULT now()
            );
            """),
        Migration(version: 3, name: "task owner", sql: """
            -- The name of the API token that submitted the task: a token with only the submit scope reads
            -- its own tasks and no others. NULL when authentication is disabled.
            ALTER TABLE tasks ADD COLUMN submitted_by text;
            """),
        Migration(version: 4, name: "generations", sql: generationsSQL),
        Migration(version: 5, name: "progress and tags", sql: progressAndTagsSQL),
        Migration(version: 6, name: "scheduled tasks, webhooks and periodic schedules", sql: timeSQL),
        Migration(version: 7, name: "flow control", sql: flowControlSQL),
        Migration(version: 8, name: "workflows", sql: workflowsSQL),
        Migration(version: 9, name: "search", sql: searchSQL),
        Migration(version: 10, name: "events keyed by task", sql: eventKeySQL),
        Migration(version: 11, name: "detached generations dropped apart", sql: detachedDropSQL),
    ]

    /// Migration 7: issue 13's columns and the pause record. Nullable columns without a default (adding
    /// them rewrites nothing; a normal-priority task without a limit key stores two NULLs).
    static let flowControlSQL = """
        -- Which ready stream carries the task (0 low, 2 high; NULL normal) and the value its type's per-key
        -- limits count it under: what a re-dispatch by the Reconciler or a redrive needs to put it back.
        ALTER TABLE tasks ADD COLUMN priority smallint, ADD COLUMN limit_key text;

        -- What is paused: a whole queue (type = '') or one type in it. The record of pauses: Redis holds a
        -- copy that agents read, which the Reconciler restores when Redis lost its data.
        CREATE TABLE conveyor_pauses (
            queue      text NOT NULL,
            type       text NOT NULL DEFAULT '',
            paused_at  timestamptz NOT NULL DEFAULT now(),
            paused_by  text,
            PRIMARY KEY (queue, type)
        );
        """

    /// Migration 6: issue 12's columns and tables. New columns are nullable without a default, so adding
    /// them rewrites nothing, and no index on `tasks` is added (every index there costs each insert and
    /// each merge): webhook deliveries and schedule state live in tables of their own.
    static let timeSQL = """
        -- When a scheduled task is due; where its completion webhook goes.
        ALTER TABLE tasks ADD COLUMN run_at timestamptz, ADD COLUMN callback_url text;

        -- A scheduled task ranks below its own release (queued, attempt 0).
        CREATE OR REPLACE FUNCTION conveyor_progress(status text, attempt integer) RETURNS bigint
            LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
            SELECT CASE
                WHEN status IN ('succeeded', 'failed', 'dead', 'cancelled') THEN 1000000000::bigint
                WHEN status = 'running' THEN attempt::bigint * 10 + 1
                WHEN status = 'retrying' THEN attempt::bigint * 10 + 2
                WHEN status = 'scheduled' THEN attempt::bigint * 10 - 1
                ELSE attempt::bigint * 10
            END
        $$;

        -- Completion webhooks still to deliver, one row per (task, attempt, terminal status). Written in the
        -- transaction that records the task's outcome; deleted once delivered or given up (each attempt
        -- is a row of the task's history).
        CREATE TABLE webhook_deliveries (
            id              text PRIMARY KEY,
            task_id         bigint NOT NULL,
            url             text NOT NULL,
            created_at      timestamptz NOT NULL DEFAULT now(),
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            attempts        integer NOT NULL DEFAULT 0,
            last_error      text
        );
        CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at);

        -- The last tick each periodic schedule has enqueued.
        CREATE TABLE conveyor_schedules (
            name       text PRIMARY KEY,
            last_tick  timestamptz NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        """

    /// Ids of one generation: a generation lasts a day or so, and at the throughput ceiling a day takes
    /// under a fifth of them, so a generation never runs out before the next one opens.
    public static let generationWidth: Int64 = 10_000_000_000

    /// Migration 4: tasks and their events are partitioned by task id into generations, so retention
    /// drops whole partitions. See `docs/architecture.md` ("Retention").
    static let generationsSQL = """
        -- Tasks and their events live in pairs of partitions by task id, one pair per generation:
        -- generation n holds ids [n * width, (n + 1) * width). A coordinator opens the next generation
        -- (and moves the id sequence to its start) about once a day; retention drops a generation's pair
        -- once every task in it finished before the retention window, rescuing the few that did not into
        -- the default partitions. The existing rows become the first generation.
        CREATE TABLE conveyor_generations (
            number    bigint PRIMARY KEY,
            first_id  bigint NOT NULL,
            opened_at timestamptz NOT NULL DEFAULT now(),
            -- When the next generation opened: no task is created in this one after closed_at plus the
            -- age at which a coordinator gives up an id block (TaskIDAllocator.maximumBlockAge).
            closed_at timestamptz
        );

        ALTER TABLE tasks RENAME TO tasks_legacy;
        ALTER INDEX tasks_pkey RENAME TO tasks_legacy_pkey;
        ALTER INDEX tasks_undispatched RENAME TO tasks_legacy_undispatched;
        -- Uniqueness of idempotency keys moves to a per-key lock (TaskStore.insert): a unique index of a
        -- table partitioned by id cannot cover a column other than the id.
        DROP INDEX tasks_idempotency_key;
        CREATE TABLE tasks (LIKE tasks_legacy INCLUDING DEFAULTS) PARTITION BY RANGE (id);

        ALTER TABLE task_events RENAME TO task_events_legacy;
        ALTER INDEX task_events_pkey RENAME TO task_events_legacy_pkey;
        ALTER INDEX task_events_task_id RENAME TO task_events_legacy_task_id;
        ALTER TABLE task_events_default RENAME TO task_events_legacy_default;
        CREATE TABLE task_events (LIKE task_events_legacy INCLUDING DEFAULTS) PARTITION BY RANGE (task_id);
        DROP FUNCTION conveyor_ensure_event_partitions(integer);

        DO $$
        DECLARE
            width constant bigint := \(generationWidth);
            first_generation bigint := (SELECT last_value FROM conveyor_task_ids) / width;
        BEGIN
            EXECUTE format('ALTER TABLE tasks_legacy RENAME TO %I', 'tasks_g' || first_generation);
            EXECUTE format('ALTER TABLE tasks ATTACH PARTITION %I FOR VALUES FROM (MINVALUE) TO (%s)',
                           'tasks_g' || first_generation, (first_generation + 1) * width);
            EXECUTE format('CREATE TABLE %I PARTITION OF task_events FOR VALUES FROM (MINVALUE) TO (%s)',
                           'task_events_g' || first_generation, (first_generation + 1) * width);
            INSERT INTO conveyor_generations (number, first_id) VALUES (first_generation, 0);
        END
        $$;
        ALTER TABLE tasks ADD PRIMARY KEY (id);
        CREATE INDEX tasks_undispatched ON tasks (created_at) WHERE NOT dispatched;
        CREATE INDEX tasks_idempotency_key ON tasks (idempotency_key) WHERE idempotency_key IS NOT NULL;
        CREATE TABLE tasks_default PARTITION OF tasks DEFAULT;
        -- Event ids are deterministic, so a replayed event collides with its first recording.
        ALTER TABLE task_events ADD PRIMARY KEY (event_id, task_id);
        CREATE INDEX task_events_task_id ON task_events (task_id);
        CREATE TABLE task_events_default PARTITION OF task_events DEFAULT;

        -- Events recorded before this migration stay in the old day-partitioned table until retention
        -- drops its days; a fresh database has none, and loses it now.
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM task_events_legacy) THEN
                DROP TABLE task_events_legacy;
            END IF;
        END
        $$;

        -- Opens generation `number` unless it exists already: builds its two tables apart, with the
        -- parents' indexes, and attaches them (a lock on the parents that lets reads and writes go on;
        -- only the default partitions, which hold a few kept tasks, are locked while they are checked).
        -- task_events first, then tasks: the order the Recorder takes them in. Coordinators may race to
        -- open the same one; a transaction-level lock makes it happen once. Ids move to it only in
        -- conveyor_advance_generation, after this has committed: a sequence change is not undone by a
        -- rollback, and ids of a generation whose tables do not exist would land in the default
        -- partitions and then block its attach for good.
        CREATE FUNCTION conveyor_open_generation(number bigint) RETURNS boolean
            LANGUAGE plpgsql AS $$
            DECLARE
                width constant bigint := \(generationWidth);
                tasks_part text := 'tasks_g' || number;
                events_part text := 'task_events_g' || number;
            BEGIN
                PERFORM pg_advisory_xact_lock(\(generationLockKey));
                IF EXISTS (SELECT 1 FROM conveyor_generations g WHERE g.number >= conveyor_open_generation.number) THEN
                    RETURN false;
                END IF;
                EXECUTE format('CREATE TABLE %I (LIKE task_events INCLUDING ALL)', events_part);
                EXECUTE format('CREATE TABLE %I (LIKE tasks INCLUDING ALL) WITH (fillfactor = 80)', tasks_part);
                EXECUTE format('ALTER TABLE task_events ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                               events_part, number * width, (number + 1) * width);
                EXECUTE format('ALTER TABLE tasks ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                               tasks_part, number * width, (number + 1) * width);
                INSERT INTO conveyor_generations (number, first_id) VALUES (number, number * width);
                RETURN true;
            END
            $$;

        -- Moves the id sequence to the newest generation's first id (never backwards) and closes the
        -- ones before it, stamped with the time the sequence moved. Idempotent: run after every open
        -- and on every pass, so an open whose second step failed is completed later.
        CREATE FUNCTION conveyor_advance_generation() RETURNS void
            LANGUAGE plpgsql AS $$
            DECLARE
                newest conveyor_generations;
            BEGIN
                PERFORM pg_advisory_xact_lock(\(generationLockKey));
                SELECT * INTO newest FROM conveyor_generations ORDER BY number DESC LIMIT 1;
                IF (SELECT last_value FROM conveyor_task_ids) < newest.first_id THEN
                    PERFORM setval('conveyor_task_ids', newest.first_id, false);
                END IF;
                UPDATE conveyor_generations SET closed_at = clock_timestamp()
                WHERE number < newest.number AND closed_at IS NULL;
            END
            $$;

        -- Drops closed generation `number` with its events, keeping (in the default partitions) the
        -- tasks `kept` and their events. The caller found `kept` by scanning the generation beforehand,
        -- without locks: in a closed generation a finished task becomes unfinished only by a redrive,
        -- which the coordinator refuses this close to the window, and a task is only created late by a
        -- coordinator that reserved its id before the close. Both leave the row undispatched, so under
        -- the lock the undispatched rows (a partial index) are kept too. The lock covers the parents
        -- alone (ONLY), task_events first as the Recorder takes them, so it neither waits for another
        -- coordinator's scan of an old partition nor deadlocks; it lasts milliseconds, and the caller
        -- sets lock_timeout. Returns how many tasks were kept, or -1 when the generation is open or gone.
        CREATE FUNCTION conveyor_drop_generation(number bigint, kept bigint[]) RETURNS bigint
            LANGUAGE plpgsql AS $$
            DECLARE
                tasks_part text := 'tasks_g' || number;
                events_part text := 'task_events_g' || number;
                moved bigint;
            BEGIN
                PERFORM pg_advisory_xact_lock(\(generationLockKey));
                IF NOT EXISTS (SELECT 1 FROM conveyor_generations g WHERE g.number = conveyor_drop_generation.number AND g.closed_at IS NOT NULL) THEN
                    RETURN -1;
                END IF;
                LOCK TABLE ONLY task_events, ONLY tasks IN ACCESS EXCLUSIVE MODE;
                EXECUTE format('CREATE TEMP TABLE conveyor_kept_tasks ON COMMIT DROP AS SELECT * FROM %I WHERE id = ANY($1) OR NOT dispatched', tasks_part) USING kept;
                GET DIAGNOSTICS moved = ROW_COUNT;
                EXECUTE format('CREATE TEMP TABLE conveyor_kept_events ON COMMIT DROP AS SELECT * FROM %I WHERE task_id IN (SELECT id FROM conveyor_kept_tasks)', events_part);
                EXECUTE format('ALTER TABLE task_events DETACH PARTITION %I', events_part);
                EXECUTE format('ALTER TABLE tasks DETACH PARTITION %I', tasks_part);
                EXECUTE format('DROP TABLE %I, %I', events_part, tasks_part);
                INSERT INTO task_events SELECT * FROM conveyor_kept_events;
                INSERT INTO tasks SELECT * FROM conveyor_kept_tasks;
                DELETE FROM conveyor_generations g WHERE g.number = conveyor_drop_generation.number;
                RETURN moved;
            END
            $$;
        """

    /// Migration 5: progress and tags. Tags are indexed in a table of their own, not on `tasks`: an
    /// index on `tasks`, even a partial one that untagged rows skip, cost single POSTs 12 % of their
    /// throughput (one more index opened and locked by every insert and by every Recorder merge; measured
    /// with `wrk` by dropping it mid-run). `task_tags` is written only for tagged tasks.
    static let progressAndTagsSQL = """
        -- The latest progress report of the task's current attempt, as the API shows it (JSON with
        -- fraction, step, total_steps, message, attempt, updated_at). Reports never move the status.
        ALTER TABLE tasks ADD COLUMN progress jsonb;
        -- A small string-to-string map given on submit, as the API returns it; NULL when none.
        ALTER TABLE tasks ADD COLUMN tags jsonb;

        -- The tags again, one row each, for finding tasks by tag: a filter `key = value`, newest first,
        -- is one range of the primary key per generation. Partitioned like tasks, so retention drops a
        -- generation's tags with its tasks.
        CREATE TABLE task_tags (
            key     text NOT NULL,
            value   text NOT NULL,
            task_id bigint NOT NULL,
            PRIMARY KEY (key, value, task_id)
        ) PARTITION BY RANGE (task_id);
        CREATE TABLE task_tags_default PARTITION OF task_tags DEFAULT;
        DO $$
        DECLARE
            generation record;
        BEGIN
            FOR generation IN
                SELECT g.number, pg_get_expr(c.relpartbound, c.oid) AS bound
                FROM conveyor_generations g JOIN pg_class c ON c.relname = 'tasks_g' || g.number
            LOOP
                EXECUTE format('CREATE TABLE %I PARTITION OF task_tags %s', 'task_tags_g' || generation.number, generation.bound);
            END LOOP;
        END
        $$;

        -- Opening and dropping a generation now covers its tags too (see migration 4).
        CREATE OR REPLACE FUNCTION conveyor_open_generation(number bigint) RETURNS boolean
            LANGUAGE plpgsql AS $$
            DECLARE
                width constant bigint := \(generationWidth);
                tasks_part text := 'tasks_g' || number;
                events_part text := 'task_events_g' || number;
                tags_part text := 'task_tags_g' || number;
            BEGIN
                PERFORM pg_advisory_xact_lock(\(generationLockKey));
                IF EXISTS (SELECT 1 FROM conveyor_generations g WHERE g.number >= conveyor_open_generation.number) THEN
                    RETURN false;
                END IF;
                EXECUTE format('CREATE TABLE %I (LIKE task_events INCLUDING ALL)', events_part);
                EXECUTE format('CREATE TABLE %I (LIKE tasks INCLUDING ALL) WITH (fillfactor = 80)', tasks_part);
                EXECUTE format('CREATE TABLE %I (LIKE task_tags INCLUDING ALL)', tags_part);
                EXECUTE format('ALTER TABLE task_events ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                               events_part, number * width, (number + 1) * width);
                EXECUTE format('ALTER TABLE tasks ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                               tasks_part, number * width, (number + 1) * width);
                EXECUTE format('ALTER TABLE task_tags ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                               tags_part, number * width, (number + 1) * width);
                INSERT INTO conveyor_generations (number, first_id) VALUES (number, number * width);
                RETURN true;
            END
            $$;

        -- Submissions write tasks, then task_tags: the lock takes the parents in that order after
        -- task_events (the Recorder's), so it deadlocks with neither.
        CREATE OR REPLACE FUNCTION conveyor_drop_generation(number bigint, kept bigint[]) RETURNS bigint
            LANGUAGE plpgsql AS $$
            DECLARE
                tasks_part text := 'tasks_g' || number;
                events_part text := 'task_events_g' || number;
                tags_part text := 'task_tags_g' || number;
                moved bigint;
            BEGIN
                PERFORM pg_advisory_xact_lock(\(generationLockKey));
                IF NOT EXISTS (SELECT 1 FROM conveyor_generations g WHERE g.number = conveyor_drop_generation.number AND g.closed_at IS NOT NULL) THEN
                    RETURN -1;
                END IF;
                LOCK TABLE ONLY task_events, ONLY tasks, ONLY task_tags IN ACCESS EXCLUSIVE MODE;
                EXECUTE format('CREATE TEMP TABLE conveyor_kept_tasks ON COMMIT DROP AS SELECT * FROM %I WHERE id = ANY($1) OR NOT dispatched', tasks_part) USING kept;
                GET DIAGNOSTICS moved = ROW_COUNT;
                EXECUTE format('CREATE TEMP TABLE conveyor_kept_events ON COMMIT DROP AS SELECT * FROM %I WHERE task_id IN (SELECT id FROM conveyor_kept_tasks)', events_part);
                EXECUTE format('CREATE TEMP TABLE conveyor_kept_tags ON COMMIT DROP AS SELECT * FROM %I WHERE task_id IN (SELECT id FROM conveyor_kept_tasks)', tags_part);
                EXECUTE format('ALTER TABLE task_events DETACH PARTITION %I', events_part);
                EXECUTE format('ALTER TABLE tasks DETACH PARTITION %I', tasks_part);
                EXECUTE format('ALTER TABLE task_tags DETACH PARTITION %I', tags_part);
                EXECUTE format('DROP TABLE %I, %I, %I', events_part, tasks_part, tags_part);
                INSERT INTO task_events SELECT * FROM conveyor_kept_events;
                INSERT INTO tasks SELECT * FROM conveyor_kept_tasks;
                INSERT INTO task_tags SELECT * FROM conveyor_kept_tags;
                DELETE FROM conveyor_generations g WHERE g.number = conveyor_drop_generation.number;
                RETURN moved;
            END
            $$;
        """

    /// The transaction lock that serialises opening and dropping generations ("convgen" in ASCII).
    static let generationLockKey: Int64 = 0x636F_6E76_6765_6E00
}

/// Applies ``Migrations/all`` in order, each in its own transaction.
///
/// Safe to run twice and from several processes at once: a session-level advisory lock serialises
/// migrators, and `conveyor_migrations` records what is applied.
public enum Migrator {
    /// The advisory lock key (an arbitrary constant, "conveyor" in ASCII).
    static let lockKey: Int64 = 0x636F_6E76_6579_6F72

    /// - Returns: the versions applied by this call (empty when the schema was up to date).
    @discardableResult
    public static func migrate(_ client: PostgresClient, migrations: [Migration] = Migrations.all) async throws -> [Int] {
        try await client.withSession { session in
            // Waiting for another coordinator's migration, or rewriting a large table, may take long.
            try session.withStatementTimeout(migrationTimeout) { () throws(PostgresError) in try migrate(session, migrations: migrations) }
        }
    }

    /// The deadline of one migration statement (the lock wait included).
    public static let migrationTimeout = Duration.seconds(600)

    public static func migrate(_ session: PostgresSession, migrations: [Migration] = Migrations.all) throws(PostgresError) -> [Int] {
        _ = try session.query("SELECT pg_advisory_lock($1)", [String(lockKey)], name: "migrate lock")
        defer { _ = try? session.query("SELECT pg_advisory_unlock($1)", [String(lockKey)], name: "migrate unlock") }
        try session.execute("""
            CREATE TABLE IF NOT EXISTS conveyor_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """, name: "create conveyor_migrations")
        let applied = Set(try session.query("SELECT version FROM conveyor_migrations").rows.compactMap { $0[0].flatMap { Int($0) } })
        var done: [Int] = []
        for migration in migrations.sorted(by: { $0.version < $1.version }) where !applied.contains(migration.version) {
            try session.transaction { () throws(PostgresError) in
                try session.execute(migration.sql, name: "migration \(migration.version)")
                _ = try session.query(
                    "INSERT INTO conveyor_migrations (version, name) VALUES ($1, $2)",
                    [String(migration.version), migration.name], name: "record migration")
            }
            done.append(migration.version)
        }
        return done
    }

    /// Versions recorded as applied.
    public static func appliedVersions(_ client: PostgresClient) async throws -> [Int] {
        try await client.withSession { session in
            try session.query("SELECT version FROM conveyor_migrations ORDER BY version").rows.compactMap { $0[0].flatMap { Int($0) } }
        }
    }
}
