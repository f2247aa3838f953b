import ServiceLifecycle

extension GroupCommitQueue {
    /// The loop of a service that flushes this queue: hands each batch to `flush` until graceful
    /// shutdown, then stops accepting items and flushes what is left, so nothing accepted is dropped.
    /// (Also after cancellation: then `flush` should give up quickly rather than retry.) `@inlinable`
    /// so that the batches are taken by code specialised for the item type (see the type's notes).
    @inlinable
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
}
