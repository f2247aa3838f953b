import Logging
import ServiceLifecycle

/// The one loop behind every periodic background concern (Forwarder, Reclaimer, LeaseKeeper,
/// Reconciler, Heartbeat, CancelWatcher, PartitionMaintainer): tick, run one pass, log a
/// failure unless it is shutdown, sleep, repeat.
///
/// Why one type: seven services once hand-rolled this loop, each with its own idea of backoff and
/// logging, and none could be tested without real seconds. The sleep goes through an injected `Clock`,
/// so a test drives the timing with ``MockClock`` and waits on ``passes`` instead of sleeping.
///
/// A pass returns how long to wait before the next one (nil: the regular ``interval``). A pass that
/// throws is retried after a jittered backoff, never longer than the interval. Logging a failure is
/// rate-limited (the first one, then every 20th) so an outage does not flood the log.
///
/// Graceful shutdown: the current pass finishes, no new one starts; `onShutdown` then runs once (a
/// heartbeat deregisters). Cancellation interrupts the sleep at once.
public struct PeriodicService: Sendable {
    /// One pass. Gets the clock time since the previous pass began (zero for the first), which is how the
    /// LeaseKeeper counts lease age on the same clock that schedules it.
    public typealias Pass = @Sendable (_ sincePreviousPass: Duration) async throws -> Duration?

    /// What the failure log line calls this loop.
    public var name: String
    public var interval: Duration
    public var failureBackoff: Backoff
    public var clock: any Clock<Duration>
    public var logger: Logger
    /// Signalled after every pass with its outcome (tests wait on it; a no-op in production).
    public var passes: TestSignal<PassOutcome>?
    /// Ends a sleep early when signalled (nil: sleeps always run their course).
    public var wakeup: Wakeup?

    private let pass: Pass
    private let onShutdown: (@Sendable () async -> Void)?

    /// What one pass did: the wait it chose, or the error it threw.
    public enum PassOutcome: Sendable {
        case completed(nextWait: Duration)
        case failed(any Error, nextWait: Duration)

        public var nextWait: Duration {
            switch self {
            case .completed(let wait), .failed(_, let wait): wait
            }
        }

        public var failed: Bool {
            if case .failed = self { return true }
            return false
        }
    }

    public static let defaultFailureBackoff = Backoff(base: .milliseconds(100), maximum: .seconds(10))

    public init(
        name: String, interval: Duration, failureBackoff: Backoff = defaultFailureBackoff,
        clock: any Clock<Duration> = ContinuousClock(), logger: Logger, passes: TestSignal<PassOutcome>? = nil,
        wakeup: Wakeup? = nil, onShutdown: (@Sendable () async -> Void)? = nil, pass: @escaping Pass
    ) {
        self.wakeup = wakeup
        self.name = name
        self.interval = interval
        self.failureBackoff = failureBackoff
        self.clock = clock
        self.logger = logger
        self.passes = passes
        self.onShutdown = onShutdown
        self.pass = pass
    }

    /// Loops until graceful shutdown or cancellation.
    public func run() async {
        await loop(on: clock)
        await onShutdown?()
    }

    /// The loop, on the concrete clock (its instants are needed to measure the time between passes).
    private func loop<C: Clock<Duration>>(on clock: C) async {
        var failures = 0
        var previous: C.Instant?
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let began = clock.now
            let since = previous.map { $0.duration(to: began) } ?? .zero
            previous = began
            let outcome: PassOutcome
            do {
                let wait = try await pass(since) ?? interval
                failures = 0
                outcome = .completed(nextWait: max(wait, .zero))
            } catch {
                if Task.isCancelled || Task.isShuttingDownGracefully { break }
                if failures % 20 == 0 {
                    logger.warning("\(name) failed; will retry", metadata: ["error": "\(error)", "failures": "\(failures + 1)"])
                }
                let wait = min(interval, failureBackoff.delay(attempt: failures))
                failures += 1
                outcome = .failed(error, nextWait: wait)
            }
            passes?.signal(outcome)
            let wait = outcome.nextWait
            guard wait > .zero else {
                await Task.yield()
                continue
            }
            try? await cancelWhenGracefulShutdown { try await sleep(for: wait, on: clock) }
        }
    }

    /// Sleeps for `wait`, or until the wakeup is signalled.
    private func sleep<C: Clock<Duration>>(for wait: Duration, on clock: C) async throws {
        guard let wakeup else { return try await clock.sleep(for: wait) }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await clock.sleep(for: wait) }
            group.addTask { await wakeup.wait() }
            await group.next()
            group.cancelAll()
        }
    }
}
