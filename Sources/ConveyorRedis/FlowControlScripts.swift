/// The Lua scripts of cluster-wide flow control: concurrency slots, rate limits and pauses are decided
/// where an agent takes work (DESIGN §8), atomically, with every key in the queue's hash slot.
///
/// An entry that a limit holds back leaves the ready stream at once (acknowledged and deleted in the same
/// script) and waits where nothing reads it again until it may start: a concurrency limit's waiting list
/// (a freed slot moves one entry back), the delayed set until its reserved start (rate), or the paused
/// type's list (resume moves them back). So it occupies no agent slot, blocks no other type on its
/// stream, and is never re-read in a loop. A held-back task stays `queued`: no attempt is spent.
extension Scripts {
    /// Lua shared by the flow-control scripts.
    static let flowLua = """
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
        -- Moves a parked entry (field/value list) back to the ready stream of its priority.
        -- ready: {low, normal, high} stream keys.
        local function requeue(ready, fields)
            local priority = 1
            for k = 1, #fields - 1, 2 do
                if fields[k] == 'pri' then priority = tonumber(fields[k + 1]) or 1 end
            end
            redis.call('XADD', ready[priority + 1] or ready[2], '*', unpack(fields))
        end
        -- Moves up to n waiting entries back to the ready streams; returns how many moved.
        local function promote(ready, waiting, n)
            local moved = 0
            while moved < n do
                local member = redis.call('LPOP', waiting)
                if not member then break end
                requeue(ready, cjson.decode(member))
                moved = moved + 1
            end
            return moved
        end
        """

    /// Decides, for a batch of entries one agent just took from one queue, which may start now.
    ///
    /// Per entry, in order: a pause of its queue or type parks it in the type's paused list; a full
    /// concurrency limit (the type's, or its limit key's) parks it in that limit's waiting list. Then its
    /// rate limits, two GCRA timelines each:
    /// - *Reservations*, in arrival order: an entry not allowed yet reserves its start at once and waits
    ///   in the delayed set until then, marked `rr`; coming back, it is not charged again. So a backlog is
    ///   released one entry at a time at the rate, in order, without re-reading anything in a loop.
    /// - *Starts*: entries released late (the Forwarder or the agents were held up) would start in a
    ///   bunch; the starts timeline spaces them again (half an interval of slack, so on-time entries are
    ///   never sent back for jitter), reserving a slot marked `rs` for each one it delays.
    /// Otherwise it takes a slot in each concurrency limit, scored with its lease deadline: the
    /// LeaseKeeper pushes the deadline on while it runs, the Completer frees it, and a dead agent's slot
    /// lapses when the lease does. An entry whose task already holds the slot (a reclaim after its agent
    /// died) keeps it. Rate keys expire once their time is past (an idle limit key costs nothing).
    public static let admit = RedisScript(name: "admit", source: """
        -- KEYS[1] -> conveyor:{<queue>}:paused    (hash)
        -- KEYS[2] -> conveyor:{<queue>}:delayed   (sorted set)
        -- KEYS[3..5] -> conveyor:{<queue>}:ready:low, :ready, :ready:high  (streams)
        -- KEYS[6…] -> the limit keys and paused lists the entries name by index
        -- ARGV[1] -> consumer group on the ready streams
        -- ARGV[2…] -> per entry: stream key index, entry id, task id, type, lease ms, paused list key index,
        --             c, then c × (running key index, waiting key index, limit, waiting-keys set index (0: none), limit key),
        --             r, then r × (reservations key index, starts key index, interval ms, burst),
        --             f, then f field/value strings of the entry
        -- Returns one verdict per entry: 0 start, 1 held (paused), 2 held (concurrency), 3 held (rate),
        -- 4 gone (no longer pending for this consumer: nothing to start or park).
        \(flowLua)
        local ready = {KEYS[3], KEYS[4], KEYS[5]}
        local all_paused = redis.call('HEXISTS', KEYS[1], '*') == 1
        local verdicts = {}
        local i = 2
        while i <= #ARGV do
            local stream = KEYS[tonumber(ARGV[i])]
            local id, task, ttype = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
            local lease = tonumber(ARGV[i + 4])
            local paused_list = KEYS[tonumber(ARGV[i + 5])]
            local c = tonumber(ARGV[i + 6])
            local ci = i + 7
            local r = tonumber(ARGV[ci + 5 * c])
            local ri = ci + 5 * c + 1
            local f = tonumber(ARGV[ri + 4 * r])
            local fi = ri + 4 * r + 1
            i = fi + f
            local fields = {}
            local reserved_at, slot_at = nil, nil
            for k = 0, f - 1, 2 do
                local name = ARGV[fi + k]
                if name == 'rr' then
                    reserved_at = tonumber(ARGV[fi + k + 1])
                elseif name == 'rs' then
                    slot_at = tonumber(ARGV[fi + k + 1])
                else
                    fields[#fields + 1] = name
                    fields[#fields + 1] = ARGV[fi + k + 1]
                end
            end
            -- The entry as parked: its fields plus what it has been charged.
            local function member(rr, rs)
                local out = {unpack(fields)}
                if rr then out[#out + 1] = 'rr'; out[#out + 1] = string.format('%d', rr) end
                if rs then out[#out + 1] = 'rs'; out[#out + 1] = string.format('%d', rs) end
                return cjson.encode(out)
            end
            -- Takes the entry out of the ready stream, if it is still ours. A slot its task still holds (a
            -- reclaimed attempt held back now) is freed, and moves a waiting entry back.
            local function park()
                if redis.call('XACK', stream, ARGV[1], id) == 0 then return false end
                redis.call('XDEL', stream, id)
                for k = 0, c - 1 do
                    if redis.call('ZREM', KEYS[tonumber(ARGV[ci + 5 * k])], task) == 1 then
                        promote(ready, KEYS[tonumber(ARGV[ci + 5 * k + 1])], 1)
                    end
                end
                return true
            end
            local verdict = 0
            if all_paused or redis.call('HEXISTS', KEYS[1], ttype) == 1 then
                verdict = 1
                if park() then redis.call('RPUSH', paused_list, member(reserved_at, nil)) else verdict = 4 end
            end
            if verdict == 0 then
                for k = 0, c - 1 do
                    local running = KEYS[tonumber(ARGV[ci + 5 * k])]
                    redis.call('ZREMRANGEBYSCORE', running, '-inf', now)
                    if not redis.call('ZSCORE', running, task) and redis.call('ZCARD', running) >= tonumber(ARGV[ci + 5 * k + 2]) then
                        verdict = 2
                        if park() then
                            redis.call('RPUSH', KEYS[tonumber(ARGV[ci + 5 * k + 1])], member(reserved_at, nil))
                            local set = tonumber(ARGV[ci + 5 * k + 3])
                            if set > 0 then redis.call('SADD', KEYS[set], ARGV[ci + 5 * k + 4]) end
                        else
                            verdict = 4
                        end
                        break
                    end
                end
            end
            if verdict == 0 and r > 0 and not reserved_at then
                -- Reservations: allowed from tat - (burst - 1) * interval; the earliest start all limits allow.
                local start = now
                for k = 0, r - 1 do
                    local tat = tonumber(redis.call('GET', KEYS[tonumber(ARGV[ri + 4 * k])]) or '0')
                    start = math.max(start, tat - (tonumber(ARGV[ri + 4 * k + 3]) - 1) * tonumber(ARGV[ri + 4 * k + 2]))
                end
                for k = 0, r - 1 do
                    local key = KEYS[tonumber(ARGV[ri + 4 * k])]
                    local tat = math.max(tonumber(redis.call('GET', key) or '0'), start) + tonumber(ARGV[ri + 4 * k + 2])
                    redis.call('SET', key, string.format('%d', tat), 'PX', math.max(1, tat - now))
                end
                reserved_at = start
                if start > now then
                    verdict = 3
                    if park() then redis.call('ZADD', KEYS[2], start, member(start, nil)) else verdict = 4 end
                end
            end
            if verdict == 0 and r > 0 then
                -- Starts: every start advances this timeline; an entry whose slot on it was reserved
                -- starts if back within an interval (at least 100 ms) of that slot.
                local tolerance = 100
                for k = 0, r - 1 do tolerance = math.max(tolerance, tonumber(ARGV[ri + 4 * k + 2])) end
                if not (slot_at and now - slot_at <= tolerance) then
                    local at = now
                    for k = 0, r - 1 do
                        local interval = tonumber(ARGV[ri + 4 * k + 2])
                        local tat = tonumber(redis.call('GET', KEYS[tonumber(ARGV[ri + 4 * k + 1])]) or '0')
                        at = math.max(at, tat - (tonumber(ARGV[ri + 4 * k + 3]) - 1) * interval - math.floor(interval / 2))
                    end
                    for k = 0, r - 1 do
                        local key = KEYS[tonumber(ARGV[ri + 4 * k + 1])]
                        local tat = math.max(tonumber(redis.call('GET', key) or '0'), at) + tonumber(ARGV[ri + 4 * k + 2])
                        redis.call('SET', key, string.format('%d', tat), 'PX', math.max(1, tat - now))
                    end
                    if at > now then
                        verdict = 3
                        if park() then redis.call('ZADD', KEYS[2], at, member(reserved_at, at)) else verdict = 4 end
                    end
                end
            end
            if verdict == 0 then
                for k = 0, c - 1 do
                    local running = KEYS[tonumber(ARGV[ci + 5 * k])]
                    redis.call('ZADD', running, now + lease, task)
                    redis.call('PEXPIRE', running, 2 * lease + 60000)
                end
            end
            verdicts[#verdicts + 1] = verdict
        end
        return verdicts
        """)

    /// Frees the concurrency slots of finished attempts and of lapsed leases, and moves one waiting entry
    /// back to the ready stream per slot freed (so a waiting task starts as soon as a slot is free, without
    /// anything polling). The Completer runs it just before it acknowledges the attempts, and an attempt
    /// frees its slot only while its entry is still pending for this agent: a retried flush frees nothing
    /// twice, and an agent whose lease another agent took over does not free the slot that agent now runs
    /// the task in. With `limit` > 0 it is also the reaper's pass: it moves as many waiting entries as the
    /// limit has free slots, which heals a slot whose moved-back entry never came to start (its task was
    /// cancelled meanwhile); and a limit key whose waiting list is empty leaves the reaper's list.
    public static let releaseSlots = RedisScript(name: "release_slots", source: """
        -- KEYS[1..3] -> conveyor:{<queue>}:ready:low, :ready, :ready:high  (streams)
        -- KEYS[4…] -> per limit: its running sorted set, then its waiting list; then the waiting-keys sets
        -- ARGV[1] -> consumer group; ARGV[2] -> this consumer
        -- ARGV per limit: limit (0 = only what was freed), waiting-keys set key index (0: none), limit key,
        --                 n, then n × (task id, ready stream key index, entry id)
        -- Returns the number of entries moved back to the ready streams.
        \(flowLua)
        local ready = {KEYS[1], KEYS[2], KEYS[3]}
        local moved = 0
        local a = 3
        local k = 4
        while a <= #ARGV do
            local running, waiting = KEYS[k], KEYS[k + 1]
            local limit, set, member, n = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), ARGV[a + 2], tonumber(ARGV[a + 3])
            local freed = 0
            for j = 0, n - 1 do
                local base = a + 4 + 3 * j
                local mine = redis.call('XPENDING', KEYS[tonumber(ARGV[base + 1])], ARGV[1], ARGV[base + 2], ARGV[base + 2], 1, ARGV[2])
                if #mine == 1 then freed = freed + redis.call('ZREM', running, ARGV[base]) end
            end
            freed = freed + redis.call('ZREMRANGEBYSCORE', running, '-inf', now)
            if limit > 0 then freed = math.max(freed, limit - redis.call('ZCARD', running)) end
            if freed > 0 then moved = moved + promote(ready, waiting, freed) end
            if set > 0 and redis.call('LLEN', waiting) == 0 then redis.call('SREM', KEYS[set], member) end
            a = a + 4 + 3 * n
            k = k + 2
        end
        return moved
        """)

    /// Pushes the lease deadline of held slots on while their attempts run (Redis' clock, as ``admit``).
    public static let renewSlots = RedisScript(name: "renew_slots", source: """
        -- KEYS[…] -> running sorted sets of one queue (a key may repeat)
        -- ARGV per key: task id, lease ms
        -- Returns how many slots were still held.
        \(flowLua)
        local held = 0
        for k = 1, #KEYS do
            local lease = tonumber(ARGV[2 * k])
            if redis.call('ZADD', KEYS[k], 'XX', 'CH', now + lease, ARGV[2 * k - 1]) == 1 then
                held = held + 1
                -- An idle set expires (a limit key nobody uses); a held slot keeps it.
                redis.call('PEXPIRE', KEYS[k], 2 * lease + 60000)
            end
        end
        return held
        """)

    /// Resumes a queue or a type: clears the pause, then moves the entries agents parked meanwhile back to
    /// the ready streams in the order they were parked, for every listed type not still paused itself.
    public static let resume = RedisScript(name: "resume", source: """
        -- KEYS[1] -> conveyor:{<queue>}:paused  (hash)
        -- KEYS[2..4] -> conveyor:{<queue>}:ready:low, :ready, :ready:high  (streams)
        -- KEYS[5…] -> conveyor:{<queue>}:paused:<type>  (lists)
        -- ARGV[1] -> the pause to clear: '*' or a type; ARGV[2…] -> the type of each list in KEYS[5…]
        -- Returns the number of entries moved back.
        \(flowLua)
        local ready = {KEYS[2], KEYS[3], KEYS[4]}
        redis.call('HDEL', KEYS[1], ARGV[1])
        local moved = 0
        if redis.call('HEXISTS', KEYS[1], '*') == 1 then return 0 end
        for k = 5, #KEYS do
            if redis.call('HEXISTS', KEYS[1], ARGV[k - 3]) == 0 then
                while true do
                    local batch = redis.call('LRANGE', KEYS[k], 0, 999)
                    if #batch == 0 then break end
                    for _, member in ipairs(batch) do requeue(ready, cjson.decode(member)) end
                    redis.call('LTRIM', KEYS[k], #batch, -1)
                    moved = moved + #batch
                end
            end
        end
        return moved
        """)
}
