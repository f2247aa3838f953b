import ConveyorCore
import Glibc

/// How a change to the partitions of `tasks` and its siblings (opening a generation, detaching or
/// dropping one) asks for its ACCESS EXCLUSIVE locks without stalling the statements behind it.
///
/// A lock request that waits queues every later statement on the same table behind it, whatever lock
/// that statement wants: each submission's insert waits as long as the change waits, and then as long
/// as the change holds. One attempt with a 200 ms `lock_timeout`, behind a transaction that held
/// `tasks` longer, stalled every submission for 200 ms (the four 200 ms seconds of an hour's soak,
/// docs/performance.md). So a change makes many attempts whose waits are too short to matter, with a
/// pause between them in which the holders finish, and waits longer only after those keep failing: a
/// load that never leaves the tables free cannot starve it, and costs its traffic one long wait at most
/// per change, as before. The same approach as `lock_timeout` plus retries in online schema-change tools.
///
/// `lock_timeout` bounds each lock an attempt waits for, not the attempt: one that gets the parents and
/// then waits for a partition or a default partition (an autovacuum of it) holds the traffic through
/// each such wait in turn.
public struct LockPatience: Sendable, Hashable {
    /// The `lock_timeout` of each attempt, in order; the last attempt's failure is the pass's failure.
    public var waits: [Duration]
    /// The pause between two attempts: long against the short waits, so that the traffic held up by an
    /// attempt has drained before the next one queues.
    public var pause: Duration

    public init(waits: [Duration], pause: Duration) {
        precondition(!waits.isEmpty, "at least one attempt")
        self.waits = waits
        self.pause = pause
    }

    /// 30 attempts of 5 ms, then 6 of 25 ms, then one of 200 ms, 50 ms apart: at most about 2.3 s per
    /// change.
    public static let standard = LockPatience(
        waits: Array(repeating: .milliseconds(5), count: 30) + Array(repeating: .milliseconds(25), count: 6)
            + [.milliseconds(200)],
        pause: .milliseconds(50))

    /// The `SET LOCAL` that bounds an attempt's lock waits (whole milliseconds, at least one: zero would
    /// mean no bound at all).
    static func setting(for wait: Duration) -> String {
        "SET LOCAL lock_timeout = '\(max(1, wait.milliseconds))ms'"
    }

    /// Runs `body` in a transaction per attempt until one gets its locks in time. An attempt that gave up
    /// on a lock (SQLSTATE 55P03) rolled back whole; the next follows a pause. Any other error, or the
    /// last attempt's, is thrown.
    ///
    /// The pause blocks the calling thread: `body` runs on a session's worker thread, which has nothing
    /// else to do meanwhile (the maintenance session that runs these changes is its own).
    /// - Parameter settings: further `SET LOCAL` statements for each attempt's transaction.
    /// - Returns: the body's value, how many attempts it took, and how long the one that succeeded took
    ///   from its BEGIN to its COMMIT's return (about as long as it held its locks).
    func run<T>(
        on session: PostgresSession, settings: String? = nil, _ body: () throws(PostgresError) -> T
    ) throws(PostgresError) -> (value: T, attempts: Int, took: Duration) {
        var attempt = 0
        while true {
            let wait = waits[attempt]
            attempt += 1
            do {
                let all = [Self.setting(for: wait), settings].compactMap { $0 }.joined(separator: "; ")
                let started = ContinuousClock.now
                let value = try session.transaction(settings: all) { () throws(PostgresError) -> T in try body() }
                return (value, attempt, ContinuousClock.now - started)
            } catch where error.isLockNotAvailable && attempt < waits.count {
                if pause > .zero { usleep(UInt32(clamping: pause.milliseconds * 1000)) }
            }
        }
    }
}
