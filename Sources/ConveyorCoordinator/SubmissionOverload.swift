/// A submission shed because the Submitter's queue was full: nothing was stored. A 503 `overloaded`
/// with `Retry-After`, so that a client backs off instead of adding to a line that would only make
/// every accepted request slower.
public struct SubmissionOverload: Error, Sendable, CustomStringConvertible {
    /// Tasks that were waiting for the Submitter when this one was shed.
    public var waitingTasks: Int

    public init(waitingTasks: Int) {
        self.waitingTasks = waitingTasks
    }

    public var description: String {
        "the coordinator is overloaded (\(waitingTasks) tasks are waiting to be stored); nothing was stored, retry later"
    }
}
