import ServiceLifecycle

extension GroupCommitQueue {
    /// The loop of a service that flushes this queue: hands each batch to `flush` until graceful
    /// shutdown, then stops accepting items and flushes what is left, so nothing accepted is dropped.
    /// (Also after cancellation: then `flush` should give up quickly rather than retry.)
    public func consume(maximumWeight: Int, flush: ([Item]) async -> Void) async {
        await withGracefulShutdownHandler {
            while let batch = await nextBatch(maximumWeight: maximumWeight) {
                await flush(batch)
            }
        } onGracefulShutdown: {
            self.finish()
        }
        finish()
        while let batch = await nextBatch(maximumWeight: maximumWeight) {
            await flush(batch)
        }
    }

    /// As ``consume(maximumWeight:flush:)``, with up to `concurrency` flushes at once, so the stages of
    /// consecutive batches overlap (one batch's COMMIT with the previous one's Redis pipeline) instead of
    /// each batch waiting for the whole of the one before. A free slot is awaited *before* the next batch
    /// is taken, so a batch still holds everything that piled up meanwhile.
    public func consume(maximumWeight: Int, concurrency: Int, flush: @escaping @Sendable ([Item]) async -> Void) async {
        precondition(concurrency > 0, "concurrency must be positive")
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            await withGracefulShutdownHandler {
                await drain(&group, running: &running, concurrency: concurrency, maximumWeight: maximumWeight, flush: flush)
            } onGracefulShutdown: {
                self.finish()
            }
            finish()
            await drain(&group, running: &running, concurrency: concurrency, maximumWeight: maximumWeight, flush: flush)
            await group.waitForAll()
        }
    }

    private func drain(
        _ group: inout TaskGroup<Void>, running: inout Int, concurrency: Int, maximumWeight: Int,
        flush: @escaping @Sendable ([Item]) async -> Void
    ) async {
        while true {
            if running == concurrency {
                await group.next()
                running -= 1
            }
            guard let batch = await nextBatch(maximumWeight: maximumWeight) else { return }
            running += 1
            group.addTask { await flush(batch) }
        }
    }
}
