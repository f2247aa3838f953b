/// The Lua scripts Conveyor runs. Each opens with the keys and arguments it takes.
public enum Scripts {
    /// Acknowledges finished tasks and records their lifecycle events, atomically, for one queue.
    ///
    /// An agent's Completer runs it once per queue per batch: either a task is acknowledged *and* its
    /// outcome is on the events stream (and, for a retry, its next attempt is on the ready stream), or
    /// none of it happened and the task will be redelivered. The acknowledged entry is deleted at once, so
    /// the ready stream holds only backlog and in-flight work.
    ///
    /// The event and the next attempt are added only when this call's XACK acknowledged the entry. So a
    /// call repeated after a lost reply, or a completion of an entry another consumer already finished,
    /// adds nothing twice.
    public static let completeTasks = RedisScript(name: "complete_tasks", source: """
        -- KEYS[1] -> conveyor:{<queue>}:ready   (stream)
        -- KEYS[2] -> conveyor:{<queue>}:events  (stream)
        -- ARGV[1] -> consumer group on the ready stream
        -- ARGV[2…] -> per item: ready-entry id to acknowledge ('' for an event without one),
        --             n, then n event field/value strings (XADD to KEYS[2]),
        --             m, then m entry field/value strings of a next attempt (XADD to KEYS[1]; m = 0 for none)
        -- Returns the number of entries acknowledged.
        local acked = 0
        local i = 2
        while i <= #ARGV do
            local ack_id = ARGV[i]
            local n = tonumber(ARGV[i + 1])
            local m = tonumber(ARGV[i + 2 + n])
            local owned = true
            if ack_id ~= '' then
                owned = redis.call('XACK', KEYS[1], ARGV[1], ack_id) == 1
                redis.call('XDEL', KEYS[1], ack_id)
                if owned then acked = acked + 1 end
            end
            if owned then
                if n > 0 then
                    redis.call('XADD', KEYS[2], '*', unpack(ARGV, i + 2, i + 1 + n))
                end
                if m > 0 then
                    redis.call('XADD', KEYS[1], '*', unpack(ARGV, i + 3 + n, i + 2 + n + m))
                end
            end
            i = i + 3 + n + m
        end
        return acked
        """)
}
