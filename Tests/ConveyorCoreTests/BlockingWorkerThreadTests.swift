import ConveyorCore
import ConveyorWorkerThread
import Synchronization
import Testing

@Suite("BlockingWorkerThread: the thread of a blocking C client")
struct BlockingWorkerThreadTests {
    @Test("a parked worker wakes for every lone job (no lost wake-up)", .timeLimit(.minutes(1)))
    func wakesForLoneJobs() async throws {
        let worker = BlockingWorkerThread<Promise<Int>>(name: "test-lone") { worker in
            var served = 0
            while let jobs = worker.nextJobs() {
                for job in jobs {
                    served += 1
                    job.succeed(served)
                }
            }
        }
        defer { worker.close() }
        for expected in 1...2_000 {
            let reply = Promise<Int>()
            #expect(worker.post(reply))
            #expect(try await reply.value == expected)
        }
    }

    @Test("jobs posted from many tasks all arrive, each poster's in order; close runs the queued ones, then ends", .timeLimit(.minutes(1)))
    func manyPostersThenClose() async throws {
        let received = Mutex<[Int]>([])
        let ended = Promise<Void>()
        let worker = BlockingWorkerThread<Int>(name: "test-many") { worker in
            while let jobs = worker.nextJobs() {
                received.withLock { $0.append(contentsOf: jobs) }
            }
            ended.succeed(())
        }
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
        try await ended.value
        let all = received.withLock { $0 }
        #expect(all.count == posters * perPoster)
        for poster in 0..<posters {
            let mine = all.filter { $0 / perPoster == poster }
            #expect(mine == Array(poster * perPoster..<(poster + 1) * perPoster))
        }
    }
}
