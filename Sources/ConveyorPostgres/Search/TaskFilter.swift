import ConveyorCore

/// What people look for in the task history: every field narrows the result (AND), an empty filter
/// matches every task. Times are Unix milliseconds, bounds inclusive.
public struct TaskFilter: Sendable, Hashable {
    /// Any of these statuses (empty: any status).
    public var statuses: Set<TaskStatus> = []
    public var type: String?
    public var queue: String?
    /// Every one of these tags (`key = value`).
    public var tags: [TaskTag] = []
    public var correlationID: String?
    public var idempotencyKey: String?
    public var createdAfter: Int64?
    public var createdBefore: Int64?
    public var finishedAfter: Int64?
    public var finishedBefore: Int64?
    /// A case-insensitive substring of the error.
    public var errorContains: String?
    /// Only the tasks this token submitted: set by the API for a token with the submit scope alone,
    /// never by the caller.
    public var submittedBy: String?

    public init() {}

    /// Whether nothing narrows the search: a bulk action refuses such a filter.
    public var isEmpty: Bool {
        self == TaskFilter()
    }
}

/// One `key = value` tag condition.
public struct TaskTag: Sendable, Hashable {
    public var key: String
    public var value: String

    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

/// One page of a search: at most the limit, newest first, and where the next page starts.
public struct TaskPage: Sendable, Hashable {
    public var tasks: [TaskSummary]
    /// Pass back as the cursor for the next page; nil when there is none. A page may hold fewer tasks
    /// than the limit and still have a next one: a search examines a bounded number of candidates per
    /// page (``TaskSearchPlan/candidateBudget``) so that no page costs more than another.
    public var nextCursor: TaskID?
}

/// A task as a list shows it: no params, result or progress (they can be large); the error is cut to
/// ``TaskSummary/errorPreviewLength`` characters.
public struct TaskSummary: Sendable, Hashable {
    public var id: TaskID
    public var type: String
    public var queue: String
    public var status: TaskStatus
    public var attempts: Int
    public var maxAttempts: Int
    public var correlationID: String
    public var idempotencyKey: String?
    /// RFC 3339 UTC with milliseconds.
    public var createdAt: String
    public var updatedAt: String
    public var finishedAt: String?
    public var error: String?
    /// JSON object text, nil for none.
    public var tags: String?
    public var workflowID: Int64?

    public static let errorPreviewLength = 300
}
