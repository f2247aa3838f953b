import DequeModule
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
package final class BlockingWorkerThread<Job: Sendable>: Sendable {
    private struct Inbox {
        var jobs: Deque<Job> = []
        var closed = false
    }

    private let inbox = Mutex(Inbox())
    private let wakeup = DispatchSemaphore(value: 0)

    /// Starts the thread. `body` runs on it until ``nextJobs()`` returns nil.
    package init(name: String, body: @escaping @Sendable (BlockingWorkerThread<Job>) -> Void) {
        let thread = Thread { [self] in body(self) }
        thread.name = name
        thread.start()
    }

    /// Queues a job. Returns false after ``close()``: the job will never run.
    @discardableResult
    package func post(_ job: Job) -> Bool {
        let accepted = inbox.withLock { inbox -> Bool in
            guard !inbox.closed else { return false }
            inbox.jobs.append(job)
            return true
        }
        if accepted { wakeup.signal() }
        return accepted
    }

    /// On the worker thread: blocks until jobs arrive and returns all of them; nil once closed and drained.
    package func nextJobs() -> [Job]? {
        while true {
            let taken = inbox.withLock { inbox -> (jobs: [Job], closed: Bool) in
                let jobs = Array(inbox.jobs)
                inbox.jobs.removeAll(keepingCapacity: true)
                return (jobs, inbox.closed)
            }
            if !taken.jobs.isEmpty { return taken.jobs }
            if taken.closed { return nil }
            wakeup.wait()
        }
    }

    /// Stops accepting jobs; the thread finishes the ones already queued and then ends.
    package func close() {
        inbox.withLock { $0.closed = true }
        wakeup.signal()
    }
}
