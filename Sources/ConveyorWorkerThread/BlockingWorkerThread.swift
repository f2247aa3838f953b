import Dispatch
import Foundation
import Synchronization

/// An OS thread of its own for a blocking C client (hiredis, libpq).
///
/// Why a thread and not an event loop: hiredis 0.14 and libpq are blocking libraries; blocking calls on a
/// NIO event loop or on Swift's cooperative pool would stall unrelated work. One thread per connection
/// waits on the socket instead, and callers suspend on continuations. The thread drains every job that
/// queued up while it was busy in one go, which is what lets the Redis connection pipeline all concurrent
/// callers' commands into one round trip.
///
/// The C handle never leaves the thread: `body` creates it, uses it and frees it, and only `Sendable`
/// jobs and results cross over.
///
/// `post` and `nextJobs` are `@inlinable` so that the connection modules get them specialised for their
/// job type: every request to Redis or PostgreSQL passes here, and the unspecialised generic code spent
/// its time in runtime metadata lookups. The type is `public` rather than `package` for the same reason:
/// with `package`, the release build still called the generic `nextJobs` from the Redis connection.
public final class BlockingWorkerThread<Job: Sendable>: Sendable {
    @usableFromInline
    struct Inbox {
        @usableFromInline var jobs: [Job] = []
        @usableFromInline var closed = false
        /// The thread is parked (or about to park) on `wakeup`: the next post signals it. While it works,
        /// posts only append, so a busy thread is not signalled once per job and does not loop once per
        /// signal afterwards.
        @usableFromInline var sleeping = false
        /// Signals sent over the thread's life (tests check that a busy thread is not signalled).
        @usableFromInline var signals = 0

        @usableFromInline init() {}
    }

    @usableFromInline let inbox = Mutex(Inbox())
    @usableFromInline let wakeup = DispatchSemaphore(value: 0)

    /// Starts the thread. `body` runs on it until ``nextJobs()`` returns nil.
    public init(name: String, body: @escaping @Sendable (BlockingWorkerThread<Job>) -> Void) {
        let thread = Thread { [self] in
            Self.nameCurrentThread(name)
            body(self)
        }
        thread.name = name
        thread.start()
    }

    /// Gives the OS thread the name `top -H`, `perf` and `/proc/<pid>/task` show. Foundation's
    /// `Thread.name` does not reach the kernel on Linux, so without this every worker carried the name
    /// of the Dispatch thread that created it (`oot.default-qos`) and a profile could not tell the
    /// Redis connections from PostgreSQL's or from the Swift executor. The kernel keeps 15 bytes: the
    /// end of the name, which holds the connection's role and index.
    static func nameCurrentThread(_ name: String) {
        var short = Substring(name.hasPrefix("conveyor-") ? name.dropFirst("conveyor-".count) : Substring(name))
        while short.utf8.count > 15 { short = short.dropFirst() }
        // `/proc/thread-self/comm` is what `pthread_setname_np` writes; Swift's Glibc module does not
        // import that GNU extension.
        let file = Glibc.open("/proc/thread-self/comm", O_WRONLY)
        guard file >= 0 else { return }
        defer { _ = Glibc.close(file) }
        var bytes = Array(short.utf8)
        _ = Glibc.write(file, &bytes, bytes.count)
    }

    /// Queues a job. Returns false after ``close()``: the job will never run.
    @inlinable
    @discardableResult
    public func post(_ job: Job) -> Bool {
        let (accepted, wake) = inbox.withLock { inbox -> (Bool, Bool) in
            guard !inbox.closed else { return (false, false) }
            inbox.jobs.append(job)
            guard inbox.sleeping else { return (true, false) }
            inbox.sleeping = false
            inbox.signals += 1
            return (true, true)
        }
        if wake { wakeup.signal() }
        return accepted
    }

    /// On the worker thread: blocks until jobs arrive and returns all of them; nil once closed and drained.
    /// Only the thread's `body` calls it (one caller: `close` wakes one sleeper).
    @inlinable
    public func nextJobs() -> [Job]? {
        while true {
            let taken = inbox.withLock { inbox -> (jobs: [Job], closed: Bool) in
                var jobs: [Job] = []
                swap(&jobs, &inbox.jobs)
                inbox.sleeping = jobs.isEmpty && !inbox.closed
                return (jobs, inbox.closed)
            }
            if !taken.jobs.isEmpty { return taken.jobs }
            if taken.closed { return nil }
            wakeup.wait()
        }
    }

    /// Stops accepting jobs; the thread finishes the ones already queued and then ends.
    public func close() {
        let wake = inbox.withLock { inbox -> Bool in
            inbox.closed = true
            guard inbox.sleeping else { return false }
            inbox.sleeping = false
            inbox.signals += 1
            return true
        }
        if wake { wakeup.signal() }
    }

    /// How often the thread has been signalled awake (for tests).
    package var signalCount: Int { inbox.withLock { $0.signals } }
}
