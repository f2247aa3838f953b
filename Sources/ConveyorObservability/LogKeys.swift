/// The metadata keys of Conveyor's log lines (DESIGN §7). Loki queries and the "Task logs" dashboard
/// filter on these names, so they are spelled in one place.
public enum LogKeys {
    public static let correlationID = "correlation_id"
    public static let taskID = "task_id"
    public static let taskType = "task_type"
    public static let queue = "queue"
    public static let attempt = "attempt"
    public static let agent = "agent"
    public static let error = "error"
    public static let count = "count"
}
