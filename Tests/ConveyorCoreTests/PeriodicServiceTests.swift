import ConveyorCore
import ConveyorTesting
import Logging
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing

@Suite("PeriodicService: one loop, driven by a test clock")
struct PeriodicServiceTests {
    private struct Flaky: Error {}

    private static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Runs `service` in a task; returns the task and a stream of its passes.
    private func start(_ service: PeriodicService) -> (Task<Void, Never>, AsyncStream<PeriodicService.PassOutcome>.AsyncIterator) {
        let stream = service.passes!.values()
        let task = Task { await service.run() }
        return (task, stream.makeAsyncIterator())
    }

    @Test("sleeps the interval between passes and runs no pass before it is over")
    func sleepsTheInterval() async throws {
        let clock = MockClock()
        let count = Atomic<Int>(0)
        let service = PeriodicService(name: "t", interval: .seconds(5), clock: clock, logger: Self.logger, passes: TestSignal()) { _ in
            count.add(1, ordering: .relaxed)
            return nil
        }
        var (task, passes) = start(service)
        _ = await passes.next()
        await clock.waitForSleepers()
        #expect(clock.pendingWaits == [.seconds(5)])
        clock.advance(by: .milliseconds(4999))
        #expect(count.load(ordering: .relaxed) == 1)
        clock.advance(by: .milliseconds(1))
        _ = await passes.next()
        #expect(count.load(ordering: .relaxed) == 2)
        task.cancel()
        await task.value
    }

    @Test("a pass may choose its own wait, and zero runs the next pass at once")
    func passChoosesItsWait() async throws {
        let clock = MockClock()
        let waits = Mutex<[Duration?]>([.zero, .milliseconds(300), nil])
        let service = PeriodicService(name: "t", interval: .seconds(1), clock: clock, logger: Self.logger, passes: TestSignal()) { _ in
            waits.withLock { $0.isEmpty ? nil : $0.removeFirst() }
        }
        var (task, passes) = start(service)
        #expect(await passes.next()?.nextWait == .zero)
        #expect(await passes.next()?.nextWait == .milliseconds(300))
        await clock.waitForSleepers()
        #expect(clock.pendingWaits == [.milliseconds(300)])
        clock.advance(by: .milliseconds(300))
        #expect(await passes.next()?.nextWait == .seconds(1))
        task.cancel()
        await task.value
    }

    @Test("a failing pass backs off, never longer than the interval, and success resets the backoff")
    func failureBacksOff() async throws {
        let clock = MockClock()
        let failuresLeft = Atomic<Int>(3)
        let service = PeriodicService(
            name: "t", interval: .seconds(2), failureBackoff: Backoff(base: .seconds(1), maximum: .seconds(60)), clock: clock,
            logger: Self.logger, passes: TestSignal()
        ) { _ in
            if failuresLeft.subtract(1, ordering: .relaxed).newValue >= 0 { throw Flaky() }
            return nil
        }
        var (task, passes) = start(service)
        for _ in 0..<3 {
            let outcome = await passes.next()
            #expect(outcome?.failed == true)
            #expect(outcome!.nextWait <= .seconds(2))
            await clock.advanceToNextSleeper()
        }
        let outcome = await passes.next()
        #expect(outcome?.failed == false)
        #expect(outcome?.nextWait == .seconds(2))
        task.cancel()
        await task.value
    }

    @Test("graceful shutdown ends the sleep, runs no further pass and calls onShutdown once")
    func gracefulShutdown() async throws {
        let clock = MockClock()
        let passes = Atomic<Int>(0)
        let shutdowns = Atomic<Int>(0)
        let service = PeriodicService(
            name: "t", interval: .seconds(60), clock: clock, logger: Self.logger,
            onShutdown: { shutdowns.add(1, ordering: .relaxed) }
        ) { _ in
            passes.add(1, ordering: .relaxed)
            return nil
        }
        await testGracefulShutdown { trigger in
            let task = Task { await service.run() }
            await clock.waitForSleepers()
            trigger.triggerGracefulShutdown()
            await task.value
        }
        #expect(passes.load(ordering: .relaxed) == 1)
        #expect(shutdowns.load(ordering: .relaxed) == 1)
    }
}
