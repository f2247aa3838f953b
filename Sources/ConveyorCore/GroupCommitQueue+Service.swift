import ServiceLifecycle

extension GroupCommitQueue {
    /// The loop of a service that flushes this queue: hands each batch to `flush` until graceful
    /// shutdown, then stops accepting items and flushes what is left, so nothing accepted is dropped.
    /// (Also after cancellation: then `flush` should give up quickly rather than retry.) `@inlinable`
    /// so that the batches are taken by code specialised for the item type (see the type's notes).
    @inlinable
    public func consume(maximumWeight: Int, flush: ([Item]) async -> Void) async {
        await consume(maximumWeight: maximumWeight, linger: nil, clock: ContinuousClock(), flush: flush)
    }

    /// The same loop with a ``Linger``: after a batch that left nothing behind in the queue, the next
    /// one is taken once the linger has passed since this one was (measured on `clock`), so that a light
    /// load shares a flush among the items of that span. A batch that left items behind is followed at
    /// once; a pause ends early when an urgent item comes (``enqueue(_:weight:urgent:)``), when a full
    /// batch waits, and at graceful shutdown.
    @inlinable
    public func consume<C: Clock>(maximumWeight: Int, linger: Linger?, clock: C, flush: ([Item]) async -> Void) async where C.Duration == Duration {
        await withGracefulShutdownHandler {
            while let batch = await nextBatch(maximumWeight: maximumWeight) {
                guard let linger else {
                    await flush(batch)
                    continue
                }
                let takenAt = clock.now
                // Read just after the take, not under its lock: an item that came in between counts as
                // left behind, which only skips one pause while items keep coming.
                let filled = pendingWeight > 0
                await flush(batch)
                if let pause = linger.pause(afterBatchAt: takenAt, filled: filled, now: clock.now) {
                    let deadline = clock.now.advanced(by: pause)
                    await withTaskGroup(of: Void.self) { group in
                        group.addTask { try? await clock.sleep(until: deadline, tolerance: nil) }
                        group.addTask { await self.waitForUrgency(orWeight: maximumWeight) }
                        await group.next()
                        group.cancelAll()
                    }
                }
            }
        } onGracefulShutdown: {
            self.finish()
        }
        finish()
        while let batch = await nextBatch(maximumWeight: maximumWeight) {
            await flush(batch)
        }
    }
}
