/// The Lua scripts Conveyor runs. Each opens with the keys and arguments it takes.
public enum Scripts {
    /// The most events `complete_tasks` puts in one batch entry (field `b`). Bounded so that the
    /// Recorder's read of ``LifecycleEvent``s stays bounded by entries: with 32, an entry costs Redis, the
    /// AOF and the Recorder a thirty-second of what one per event did, and a read of
    /// `CONVEYOR_RECORDER_BATCH / 32` entries holds at most `CONVEYOR_RECORDER_BATCH` events.
    public static let eventsPerBatchEntry = 32

    /// Acknowledges finished tasks and records their lifecycle events, atomically, for one queue.
    ///
    /// An agent's Completer runs it once per queue per batch: either a task is acknowledged *and* its
    /// outcome is on the events stream (and, for a retry, its next attempt is in the delayed set), or
    /// none of it happened and the task will be redelivered. Acknowledged entries are then trimmed away
    /// (see ``trimFinishedLua``), so the ready stream holds backlog and in-flight work, plus finished
    /// entries newer than the oldest one still in flight.
    ///
    /// The event, the next attempt and the dead letter are added only when this call's XACK acknowledged
    /// the entry. So a call repeated after a lost reply, or a completion of an entry another consumer
    /// already finished, adds nothing twice. Due times come from Redis' clock, the one the Forwarder reads.
    ///
    /// Most items are plain completions (an outcome to acknowledge, no retry, no dead letter): they come
    /// first, two arguments each instead of five. Redis makes an object of every argument, and the
    /// script read three counts per item: measured on calls of 200 completions, 3.4–4.2 µs of Redis'
    /// time per task in the general form, 2.7–3.3 µs in this one (docs/performance.md, "A ninth step").
    public static let completeTasks = RedisScript(name: "complete_tasks", source: """
        -- KEYS[1] -> conveyor:{<queue>}:ready       (stream)
        -- KEYS[2] -> conveyor:{<queue>}:events      (stream)
        -- KEYS[3] -> conveyor:{<queue>}:delayed     (sorted set: member = JSON array of entry fields, score = due ms)
        -- KEYS[4] -> conveyor:{<queue>}:dead        (stream)
        -- KEYS[5] -> conveyor:{<queue>}:dead-index  (hash: task id -> dead entry id)
        -- ARGV[1] -> consumer group on the ready stream
        -- ARGV[2] -> k, the number of plain completions that follow
        -- ARGV[3…] -> k plain completions, each a ready-entry id to acknowledge and one framed compact
        --             event (as below, n = 1, m = 0, d = 0), then any number of items, each:
        --             ready-entry id to acknowledge ('' for an event without one),
        --             n, then n event field/value strings (XADD to KEYS[2]) or, when n = 1, one framed
        --             compact event (`<length>:<event>`; those of the call go to KEYS[2] as entries of
        --             field `b`, \(eventsPerBatchEntry) events each at most, in order),
        --             m, then, when m > 0, the retry delay in ms and m-1 field/value strings of the next
        --             attempt (ZADD to KEYS[3], due at now + delay),
        --             d, then, when d > 0, the task id and d-1 field/value strings of its dead letter
        --             (XADD to KEYS[4], indexed in KEYS[5])
        -- Returns the number of entries acknowledged.
        \(trimFinishedLua)
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
        local acked = 0
        local acked_ids = {}
        local batch = {}
        local function add_framed(event)
            batch[#batch + 1] = event
            if #batch == \(eventsPerBatchEntry) then
                redis.call('XADD', KEYS[2], '*', 'b', table.concat(batch))
                batch = {}
            end
        end
        local i = 3
        for _ = 1, tonumber(ARGV[2]) do
            local ack_id = ARGV[i]
            if redis.call('XACK', KEYS[1], ARGV[1], ack_id) == 1 then
                acked = acked + 1
                acked_ids[acked] = ack_id
                add_framed(ARGV[i + 1])
            end
            i = i + 2
        end
        while i <= #ARGV do
            local ack_id = ARGV[i]
            local n = tonumber(ARGV[i + 1])
            local m = tonumber(ARGV[i + 2 + n])
            local d = tonumber(ARGV[i + 3 + n + m])
            local owned = true
            if ack_id ~= '' then
                owned = redis.call('XACK', KEYS[1], ARGV[1], ack_id) == 1
                if owned then
                    acked = acked + 1
                    acked_ids[acked] = ack_id
                end
            end
            if owned then
                if n == 1 then
                    add_framed(ARGV[i + 2])
                elseif n > 0 then
                    redis.call('XADD', KEYS[2], '*', unpack(ARGV, i + 2, i + 1 + n))
                end
                if m > 0 then
                    local delay = tonumber(ARGV[i + 3 + n])
                    local fields = {unpack(ARGV, i + 4 + n, i + 2 + n + m)}
                    redis.call('ZADD', KEYS[3], now + delay, cjson.encode(fields))
                end
                if d > 0 then
                    local dead_id = redis.call('XADD', KEYS[4], '*', unpack(ARGV, i + 5 + n + m, i + 3 + n + m + d))
                    redis.call('HSET', KEYS[5], ARGV[i + 4 + n + m], dead_id)
                end
            end
            i = i + 4 + n + m + d
        end
        if #batch > 0 then
            redis.call('XADD', KEYS[2], '*', 'b', table.concat(batch))
        end
        trim_finished(KEYS[1], ARGV[1], acked_ids)
        return #acked_ids
        """)

    /// Lua shared by the scripts that acknowledge stream entries: after a call that acknowledged
    /// `acked_ids`, `trim_finished(stream, group, acked_ids)` removes the entries the group is done with:
    /// those older than its oldest pending entry or, when none is pending, every entry up to the last one
    /// delivered to the group; and, once entries ``deleteBehindAfterMilliseconds`` newer than that oldest
    /// pending entry (by their ids) finish, deletes the acknowledged entries the trim could not reach.
    ///
    /// Why not XDEL each acknowledged entry: XDEL finds an entry by walking its listpack node from the
    /// start, about 10 µs each: at the throughput ceiling `INFO commandstats` showed 1.46 s of Redis' time
    /// in XDEL in about 10 s, twice what all XADDs took. XTRIM MINID drops whole nodes and walks a partial
    /// one once per call. Pending entries are never trimmed (XAUTOCLAIM still reads them), nor
    /// undelivered ones (they are newer than every acknowledged entry when nothing is pending).
    ///
    /// Why wait before deleting behind the oldest pending entry: under load that entry is usually a
    /// fraction of a second older than the ones finishing, agents finish out of order, and most
    /// acknowledged ids are newer than it; deleting them one by one took 13 % of the scripts' time at the
    /// ceiling (XDEL alone, before the Lua that compared each id), for entries the next trims remove
    /// anyway. Entries wait for the trim while they were added less than that many seconds after the
    /// oldest pending one; once the finishing entries have moved further past it (a long task, a dead
    /// agent's entry awaiting its lease) they are deleted as they finish. So what a stuck entry leaves
    /// behind is bounded by that many seconds of submissions, and goes with the next trim once it
    /// finishes.
    ///
    /// Why compare ids with each other and not the oldest pending one's age: with a backlog, every entry
    /// is read long after it was added, so its id's age measures the backlog, not a stuck entry. Measured
    /// with default agents behind a backlog (`conveyor-load run --preset max --agent-concurrency 64`):
    /// a third of the completion calls took the XDEL path, 190 µs each, on a stream growing longer.
    static let trimFinishedLua = """
        local function id_parts(id)
            local ms, seq = string.match(id, '^(%d+)-(%d+)$')
            return tonumber(ms), tonumber(seq)
        end
        local function last_delivered(stream, group)
            for _, info in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
                local name, last
                for k = 1, #info, 2 do
                    if info[k] == 'name' then name = info[k + 1] elseif info[k] == 'last-delivered-id' then last = info[k + 1] end
                end
                if name == group then return last end
            end
        end
        local function trim_finished(stream, group, acked_ids)
            if #acked_ids == 0 then return end
            local summary = redis.call('XPENDING', stream, group)
            local floor = summary[2]
            if not floor then
                local last = last_delivered(stream, group)
                if not last then return end
                local ms, seq = id_parts(last)
                redis.call('XTRIM', stream, 'MINID', string.format('%d-%d', ms, seq + 1))
                return
            end
            redis.call('XTRIM', stream, 'MINID', floor)
            local floor_ms, floor_seq = id_parts(floor)
            local above = {}
            local newest_ms = floor_ms
            for _, id in ipairs(acked_ids) do
                local ms, seq = id_parts(id)
                if ms > floor_ms or (ms == floor_ms and seq >= floor_seq) then
                    above[#above + 1] = id
                    if ms > newest_ms then newest_ms = ms end
                end
            end
            if newest_ms - floor_ms < \(deleteBehindAfterMilliseconds) then return end
            for start = 1, #above, 1000 do
                redis.call('XDEL', stream, unpack(above, start, math.min(start + 999, #above)))
            end
        end
        """

    /// How much newer (by their ids) than the oldest pending entry finishing entries must be before the
    /// acknowledged entries newer than it are deleted one by one instead of waiting for the trim (see
    /// ``trimFinishedLua``).
    static let deleteBehindAfterMilliseconds = 5000

    /// Acknowledges recorded lifecycle events and trims them away (see ``trimFinishedLua``), in one round trip.
    ///
    /// One XACK takes up to a thousand ids: nothing here depends on which of them were still pending (an
    /// id that was not had been acknowledged before, and removing its entry is as right), so the per-id
    /// XACK that ``completeTasks`` needs for ownership would only cost a command, and an AOF record, per event.
    public static let acknowledgeEvents = RedisScript(name: "acknowledge_events", source: """
        -- KEYS[1] -> conveyor:{<queue>}:events  (stream)
        -- ARGV[1] -> consumer group (the recorders')
        -- ARGV[2…] -> entry ids (read by that group)
        -- Returns the number of entries acknowledged.
        \(trimFinishedLua)
        local ids = {}
        for i = 2, #ARGV do ids[i - 1] = ARGV[i] end
        local acked = 0
        for start = 1, #ids, 1000 do
            acked = acked + redis.call('XACK', KEYS[1], ARGV[1], unpack(ids, start, math.min(start + 999, #ids)))
        end
        trim_finished(KEYS[1], ARGV[1], ids)
        return acked
        """)

    /// Moves retries and scheduled tasks whose time has come from the delayed set to the ready stream,
    /// atomically, so several coordinators can run it at once and each entry moves exactly once. A
    /// scheduled task's entry (marked `sched`) also gets its release recorded: a `queued` event (attempt
    /// 0), which moves its status on from `scheduled`.
    public static let forwardDue = RedisScript(name: "forward_due", source: """
        -- KEYS[1] -> conveyor:{<queue>}:delayed  (sorted set written by complete_tasks, admit and the submitter)
        -- KEYS[2] -> conveyor:{<queue>}:ready    (stream)
        -- KEYS[3] -> conveyor:{<queue>}:events   (stream)
        -- KEYS[4], KEYS[5] -> conveyor:{<queue>}:ready:low, :ready:high  (streams of the other priorities)
        -- ARGV[1] -> most entries to move
        -- Returns {moved, ms until the next entry is due (-1 when none is left)}.
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
        local streams = {['0'] = KEYS[4] or KEYS[2], ['1'] = KEYS[2], ['2'] = KEYS[5] or KEYS[2]}
        local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
        for _, member in ipairs(due) do
            local fields = cjson.decode(member)
            local f = {}
            for i = 1, #fields - 1, 2 do f[fields[i]] = fields[i + 1] end
            redis.call('XADD', streams[f['pri'] or '1'] or KEYS[2], '*', unpack(fields))
            redis.call('ZREM', KEYS[1], member)
            if f['sched'] then
                redis.call('XADD', KEYS[3], '*', 'task', f['id'], 'status', 'queued', 'attempt', '0', 'agent', 'forwarder',
                    'at', tostring(now), 'cid', f['cid'] or '', 'type', f['type'] or '')
            end
        end
        local next = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
        local wait = -1
        if next[2] then wait = math.max(0, tonumber(next[2]) - now) end
        return {#due, wait}
        """)

    /// Renews leases: resets the idle time of the entries this consumer still owns (XCLAIM … JUSTID, which
    /// does not count as a delivery), and never takes an entry another consumer has claimed meanwhile.
    public static let renewLeases = RedisScript(name: "renew_leases", source: """
        -- KEYS[1] -> conveyor:{<queue>}:ready  (stream)
        -- ARGV[1] -> consumer group; ARGV[2] -> this consumer; ARGV[3…] -> entry ids
        -- Returns the ids whose lease was renewed.
        local renewed = {}
        for i = 3, #ARGV do
            local owned = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
            if #owned == 1 then
                redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
                renewed[#renewed + 1] = ARGV[i]
            end
        end
        return renewed
        """)

    /// Hands entries back at an agent's shutdown deadline: sets their idle time far past any lease, so
    /// another agent's Reclaimer takes them at once. Only entries this consumer still owns (one another
    /// agent has claimed meanwhile is left alone), and JUSTID, so it does not count as a delivery.
    public static let handBack = RedisScript(name: "hand_back", source: """
        -- KEYS[1] -> conveyor:{<queue>}:ready  (stream)
        -- ARGV[1] -> consumer group; ARGV[2] -> this consumer; ARGV[3] -> idle time to set, ms; ARGV[4…] -> entry ids
        -- Returns how many entries were handed back.
        local handed = 0
        for i = 4, #ARGV do
            local owned = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
            if #owned == 1 then
                redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'IDLE', ARGV[3], 'JUSTID')
                handed = handed + 1
            end
        end
        return handed
        """)

    /// Dead-letters a ready entry that must not run again (delivered too often without finishing, or
    /// undecodable): copies it to the dead stream, records the event, acknowledges and deletes it, all at
    /// once, and only if it is still pending (so two agents cannot both do it).
    public static let deadLetter = RedisScript(name: "dead_letter", source: """
        -- KEYS[1] -> conveyor:{<queue>}:ready   (stream)
        -- KEYS[2] -> conveyor:{<queue>}:events  (stream)
        -- KEYS[3] -> conveyor:{<queue>}:dead    (stream)
        -- KEYS[4] -> conveyor:{<queue>}:dead-index  (hash: task id -> dead entry id)
        -- ARGV[1] -> consumer group; ARGV[2] -> entry id; ARGV[3] -> task id ('' when undecodable)
        -- ARGV[4] -> n, then n dead-entry field/value strings; then m, then m event field/value strings
        -- Returns 1 when this call dead-lettered the entry, 0 when it was no longer pending.
        local n = tonumber(ARGV[4])
        local m = tonumber(ARGV[5 + n])
        if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
        redis.call('XDEL', KEYS[1], ARGV[2])
        if n > 0 then
            local dead_id = redis.call('XADD', KEYS[3], '*', unpack(ARGV, 5, 4 + n))
            if ARGV[3] ~= '' then redis.call('HSET', KEYS[4], ARGV[3], dead_id) end
        end
        if m > 0 then redis.call('XADD', KEYS[2], '*', unpack(ARGV, 6 + n, 5 + n + m)) end
        return 1
        """)

    /// Redrives one dead-lettered task: removes its dead letter and adds its next attempt to the ready
    /// stream, atomically.
    public static let redrive = RedisScript(name: "redrive", source: """
        -- KEYS[1] -> conveyor:{<queue>}:dead        (stream)
        -- KEYS[2] -> conveyor:{<queue>}:dead-index  (hash: task id -> dead entry id)
        -- KEYS[3] -> conveyor:{<queue>}:ready       (stream)
        -- ARGV[1] -> task id; ARGV[2…] -> field/value strings of the next attempt's entry
        -- Returns 1 when a dead letter was removed, 0 when there was none (Redis lost it): the next
        -- attempt is added either way, since PostgreSQL says the task is dead.
        local dead_id = redis.call('HGET', KEYS[2], ARGV[1])
        if dead_id then
            redis.call('XDEL', KEYS[1], dead_id)
            redis.call('HDEL', KEYS[2], ARGV[1])
        end
        redis.call('XADD', KEYS[3], '*', unpack(ARGV, 2, #ARGV))
        if dead_id then return 1 end
        return 0
        """)

    /// Trims a queue's dead stream to a bound, oldest first, with the index entries that point at the
    /// trimmed letters (an index entry of a task dead again since points at its newer letter and stays).
    /// The tasks' rows stay in PostgreSQL: a redrive by id still works.
    public static let trimDeadLetters = RedisScript(name: "trim_dead_letters", source: """
        -- KEYS[1] -> conveyor:{<queue>}:dead        (stream)
        -- KEYS[2] -> conveyor:{<queue>}:dead-index  (hash: task id -> dead entry id)
        -- ARGV[1] -> most letters to keep; ARGV[2] -> most letters to trim in this call
        -- Returns the number of letters trimmed.
        local excess = redis.call('XLEN', KEYS[1]) - tonumber(ARGV[1])
        if excess <= 0 then return 0 end
        local entries = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', math.min(excess, tonumber(ARGV[2])))
        local ids = {}
        for _, entry in ipairs(entries) do
            ids[#ids + 1] = entry[1]
            local fields = entry[2]
            for k = 1, #fields, 2 do
                if fields[k] == 'id' and redis.call('HGET', KEYS[2], fields[k + 1]) == entry[1] then
                    redis.call('HDEL', KEYS[2], fields[k + 1])
                end
            end
        end
        if #ids > 0 then redis.call('XDEL', KEYS[1], unpack(ids)) end
        return #ids
        """)

    /// Removes a consumer from a group if it holds no pending entry and has been idle at least a while.
    /// Checked and done at once: deleting a consumer deletes its pending entries, which would lose work.
    public static let removeIdleConsumer = RedisScript(name: "remove_idle_consumer", source: """
        -- KEYS[1] -> a stream (conveyor:{<queue>}:ready or :events)
        -- ARGV[1] -> consumer group; ARGV[2] -> consumer; ARGV[3] -> least idle time, ms
        -- Returns 1 when the consumer was removed.
        for _, info in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
            local name, pending, idle
            for k = 1, #info, 2 do
                if info[k] == 'name' then name = info[k + 1]
                elseif info[k] == 'pending' then pending = info[k + 1]
                elseif info[k] == 'idle' then idle = info[k + 1] end
            end
            if name == ARGV[2] then
                if pending == 0 and idle >= tonumber(ARGV[3]) then
                    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
                    return 1
                end
                return 0
            end
        end
        return 0
        """)
}
