import ConveyorWorkerThread
import Dispatch
import Foundation
import Synchronization
import Testing

@Suite("BlockingWorkerThread: the thread of a blocking C client")
struct BlockingWorkerThreadTests {
    /// A worker that reports every job it runs on a stream. Waiting on the stream ends when the test is
    /// cancelled (its time limit), so a lost wake-up fails the test instead of hanging the run.
    private static func reportingWorker(
        name: String, onJob: @escaping @Sendable (Int) -> Void = { _ in }
    ) -> (BlockingWorkerThread<Int>, AsyncStream<Int>) {
        let (ran, report) = AsyncStream.makeStream(of: Int.self)
        let worker = BlockingWorkerThread<Int>(name: name) { worker in
            while let jobs = worker.nextJobs() {
                for job in jobs {
                    onJob(job)
                    report.yield(job)
                }
            }
            report.finish()
        }
        return (worker, ran)
    }

    @Test("the OS thread carries the connection's name, the end of it when longer than the kernel's 15 bytes", .timeLimit(.minutes(1)))
    func osThreadIsNamed() async throws {
        for (name, expected) in [("conveyor-agent-reader", "agent-reader"), ("conveyor-coordinator-pg-3", "oordinator-pg-3")] {
            let (seen, report) = AsyncStream.makeStream(of: String.self)
            let worker = BlockingWorkerThread<Int>(name: name) { worker in
                let comm = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "unreadable"
                report.yield(comm.trimmingCharacters(in: .newlines))
                while worker.nextJobs() != nil {}
            }
            defer { worker.close() }
            var names = seen.makeAsyncIterator()
            #expect(await names.next() == expected)
        }
    }

    @Test("a parked worker wakes for every lone job (no lost wake-up)", .timeLimit(.minutes(1)))
    func wakesForLoneJobs() async {
        let (worker, ran) = Self.reportingWorker(name: "test-lone")
        defer { worker.close() }
        var reports = ran.makeAsyncIterator()
        for job in 1...2_000 {
            #expect(worker.post(job))
            let report = await reports.next()
            #expect(report == job)
            if report != job { return }
        }
    }

    @Test("a busy worker is not signalled for the jobs posted meanwhile; it takes them all in its next round", .timeLimit(.minutes(1)))
    func busyWorkerIsNotSignalled() async {
        let release = DispatchSemaphore(value: 0)
        // The first job holds the thread until the test has posted the rest.
        let (worker, ran) = Self.reportingWorker(name: "test-busy") { job in if job == 0 { release.wait() } }
        defer { worker.close() }
        var reports = ran.makeAsyncIterator()
        #expect(worker.post(0))
        for job in 1...500 { #expect(worker.post(job)) }
        let signalsWhileBusy = worker.signalCount
        release.signal()
        var seen: [Int] = []
        while seen.count < 501, let job = await reports.next() { seen.append(job) }
        #expect(seen == Array(0...500))
        // At most one signal for the first job (the thread may not have parked yet); none per job after.
        #expect(signalsWhileBusy <= 1)
        #expect(worker.signalCount <= 1)
    }

    @Test("jobs posted from many tasks all arrive, each poster's in order; close runs the queued ones, then ends", .timeLimit(.minutes(1)))
    func manyPostersThenClose() async {
        let (worker, ran) = Self.reportingWorker(name: "test-many")
        let posters = 8, perPoster = 5_000
        await withTaskGroup(of: Void.self) { group in
            for poster in 0..<posters {
                group.addTask {
                    for index in 0..<perPoster {
                        worker.post(poster * perPoster + index)
                        if index % 64 == 0 { await Task.yield() }
                    }
                }
            }
        }
        worker.close()
        #expect(!worker.post(-1))
        // The stream finishes when the thread's loop ends, after the queued jobs.
        var all: [Int] = []
        for await job in ran { all.append(job) }
        #expect(all.count == posters * perPoster)
        for poster in 0..<posters {
            let mine = all.filter { $0 / perPoster == poster }
            #expect(mine == Array(poster * perPoster..<(poster + 1) * perPoster))
        }
    }
}
