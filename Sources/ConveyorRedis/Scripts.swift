/// The Lua scripts Conveyor runs. Each opens with the keys and arguments it takes.
public enum Scripts {
    /// Acknowledges finished tasks and records their lifecycle events, atomically, for one queue.
    ///
    /// An agent's Completer runs it once per queue per batch: either a task is acknowledged *and* its
    /// outcome is on the events stream, or neither happened and the task will be redelivered. The acked
    /// entry is deleted at once, so the ready stream holds only backlog and in-flight work.
    public static let completeTasks = RedisScript(name: "complete_tasks", source: """
        -- KEYS[1] -> conveyor:{<queue>}:ready   (stream)
        -- KEYS[2] -> conveyor:{<queue>}:events  (stream)
        -- ARGV[1] -> consumer group on the ready stream
        -- ARGV[2…] -> per item: ready-entry id to acknowledge ('' for none), n, then n event field/value strings
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
        end
        return acked
        """)
}
