import ConveyorPostgres
import ConveyorRedis

/// Why a submission failed, in words that are true for the client: whether anything was stored, and
/// whether a task may run all the same. Every case is a 503 (the cause passes with time).
public struct SubmissionError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// Nothing was stored or queued (or, with ``keptTasksWithIdempotencyKeys``, only the tasks with
        /// an idempotency key were kept).
        case nothingStored
        /// PostgreSQL stopped answering during COMMIT: the tasks may or may not be stored.
        case commitOutcomeUnknown
        /// Stored, but Redis failed while they were being queued; the rows without an idempotency key
        /// were withdrawn, yet some entries may already have reached Redis and may run once.
        case withdrawnAfterPartialDispatch
    }

    public var kind: Kind
    /// The failure behind it (logged, never sent to the client).
    public var underlying: any Error
    /// Some of the submission's tasks had an idempotency key and were kept (never withdrawn: another
    /// submission of the key may already have been answered with them); the Reconciler dispatches them.
    public var keptTasksWithIdempotencyKeys: Bool

    public init(_ kind: Kind, underlying: any Error, keptTasksWithIdempotencyKeys: Bool = false) {
        self.kind = kind
        self.underlying = underlying
        self.keptTasksWithIdempotencyKeys = keptTasksWithIdempotencyKeys
    }

    /// Classifies a failure of the COPY/COMMIT step (before anything was dispatched). A failure that is
    /// no outage (a rejected statement, a bug) is returned as it is, for a 500 and the log.
    static func storing(_ error: any Error) -> any Error {
        switch error {
        case let error as PostgresError where error.isUnavailable:
            SubmissionError(error.query == "commit" ? .commitOutcomeUnknown : .nothingStored, underlying: error)
        case is RedisError:
            SubmissionError(.nothingStored, underlying: error)
        default:
            error
        }
    }

    /// Classifies a failed dispatch whose rows without an idempotency key were withdrawn again. A failure
    /// that is not Redis' own is taken as one that may have reached Redis in part.
    static func dispatching(_ error: any Error, keptTasksWithIdempotencyKeys: Bool) -> SubmissionError {
        let mayHaveRun = (error as? RedisError)?.mayHaveRun ?? true
        return SubmissionError(
            mayHaveRun ? .withdrawnAfterPartialDispatch : .nothingStored, underlying: error,
            keptTasksWithIdempotencyKeys: keptTasksWithIdempotencyKeys)
    }

    /// The message the client reads.
    public var message: String {
        let backend = underlying is PostgresError ? "PostgreSQL" : underlying is RedisError ? "Redis" : "a backend"
        let withdrawn = keptTasksWithIdempotencyKeys ? "the tasks without an idempotency key" : "the tasks"
        let kept = keptTasksWithIdempotencyKeys
            ? "; those with an idempotency key were kept and will run: send them again with the same keys to learn their ids" : ""
        switch kind {
        case .nothingStored:
            if keptTasksWithIdempotencyKeys { return "\(backend) is unavailable; \(withdrawn) were not stored\(kept)" }
            return "\(backend) is unavailable; nothing was stored"
        case .commitOutcomeUnknown:
            return "PostgreSQL stopped answering during COMMIT; the tasks may or may not be stored: retry with the same Idempotency-Key"
        case .withdrawnAfterPartialDispatch:
            return "Redis failed while the tasks were being queued; \(withdrawn) were withdrawn and will not be found by id, "
                + "but some may already have reached Redis and may still run once\(kept)"
        }
    }

    public var description: String { "\(message) (\(underlying))" }
}
