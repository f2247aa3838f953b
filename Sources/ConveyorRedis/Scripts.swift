/// The Lua scripts Conveyor runs. Each opens with the keys and arguments it takes.
public enum Scripts {
    /// Acknowledges finished tasks and records their lifecycle events, atomically, for one queue.
    ///
    /// An agent's Completer runs it once per queue per batch: either a task is acknowledged *and* its
    /// outcome is on the events stream (and, for a retry, its next attempt is on the ready stream), or
    /// none of it happened and the task will be redelivered. The acknowledged entry is deleted at once, so
    /// the ready stream holds only backlog and in-flight work.
    public static let completeTasks = RedisScript(name: "complete_tasks", source: """
        -- KEYS[1] -> conveyor:{<queue>}:ready   (stream)
        -- KEYS[2] -> conveyor:{<queue>}:events  (stream)
        -- ARGV[1] -> consumer group on the ready stream
        -- ARGV[2…] -> per item: ready-entry id to acknowledge ('' for none),
        --             n, then n event field/value strings (XADD to KEYS[2]),
        --             m, then m entry field/value strings of a next attempt (XADD to KEYS[1]; m = 0 for none)
        -- Returns the number of entries acknowledged.
        local acked = 0
        local i = 2
        while i <= #ARGV do
            local ack_id = ARGV[i]
            local n = tonumber(ARGV[i + 1])
            if ack_id ~= '' then
                acked = acked + redis.call('XACK', KEYS[1], ARGV[1], ack_id)
                redis.call('XDEL', KEYS[1], ack_id)
            end
            if n > 0 then
                redis.call('XADD', KEYS[2], '*', unpack(ARGV, i + 2, i + 1 + n))
            end
            i = i + 2 + n
            local m = tonumber(ARGV[i])
            if m > 0 then
                redis.call('XADD', KEYS[1], '*', unpack(ARGV, i + 1, i + m))
            end
            i = i + 1 + m
        end
        return acked
        """)
}
