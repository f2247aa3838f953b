import ConveyorCore
import ConveyorPostgres
import Logging
import ServiceLifecycle
import Synchronization

/// Tells live streams and long-polls that their task changed, from one shared path: a single
/// `LISTEN conveyor_tasks` connection fed by every Recorder's committed batches and by the API's own
/// changes (``TaskNotifications``). A thousand watchers cost one connection and a dictionary lookup
/// per changed id, never a poll each.
///
/// A watcher subscribes first and reads the task second, so no change can fall between the two. When
/// the listening connection is (re)established, notifications may have been missed: every watcher is
/// signalled and re-reads.
///
/// Recorders notify only while some coordinator announces watchers (``NotificationGate``). The hub
/// announces with its first watcher and every 10 s while it has any. A Recorder may act on its look of
/// up to a second before an announcement that had lapsed, so a watcher that starts then re-reads once
/// when that second is over.
public final class TaskWatchHub: Service, Sendable {
    private struct State {
        var watchers: [TaskID: [Int: ChangeSignal]] = [:]
        var nextID = 0
        var announcedAt: ContinuousClock.Instant?
        /// Until when a new watcher must re-read once (Recorders may not have noticed the announcement).
        var catchUpAt: ContinuousClock.Instant?
    }

    private let listener: PostgresListener
    private let client: PostgresClient
    private let logger: Logger
    private let state = Mutex(State())
    private let count = Atomic<Int>(0)

    /// - Parameter client: where announcements are written.
    init(listener: PostgresListener, client: PostgresClient, logger: Logger) {
        self.listener = listener
        self.client = client
        self.logger = logger
    }

    /// Watchers registered now (streams and waits).
    public var watcherCount: Int { count.load(ordering: .relaxed) }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.listener.run { event in self.handle(event) } }
                group.addTask {
                    // Long streams outlive an announcement: renew it while anyone watches.
                    while !Task.isCancelled {
                        try? await Task.sleep(for: NotificationGate.renewAfter)
                        if self.watcherCount > 0 { _ = await self.announceIfDue() }
                    }
                }
            }
        }
    }

    /// Announces watchers unless done within ``NotificationGate/renewAfter``; returns when a watcher
    /// starting now must re-read once (nil: notifications already flow).
    private func announceIfDue() async -> ContinuousClock.Instant? {
        let now = ContinuousClock.now
        let (due, catchUp) = state.withLock { state -> (Bool, ContinuousClock.Instant?) in
            if let catchUp = state.catchUpAt, catchUp <= now { state.catchUpAt = nil }
            guard state.announcedAt.map({ $0.duration(to: now) >= NotificationGate.renewAfter }) ?? true else {
                return (false, state.catchUpAt)
            }
            state.announcedAt = now
            // Until the answer comes, assume the announcement had lapsed.
            state.catchUpAt = now + NotificationGate.recheckAfter + .milliseconds(500)
            return (true, state.catchUpAt)
        }
        guard due else { return catchUp }
        do {
            let lapsed = try await NotificationGate.announce(on: client)
            if !lapsed { state.withLock { $0.catchUpAt = nil } }
            return lapsed ? catchUp : nil
        } catch {
            logger.warning("announcing task watchers failed; streams and waits fall back to their own re-reads", metadata: ["error": "\(error)"])
            state.withLock { $0.announcedAt = nil }
            return catchUp
        }
    }

    func handle(_ event: PostgresListener.Event) {
        switch event {
        case .listening:
            let all = state.withLock { $0.watchers.values.flatMap(\.values) }
            for signal in all { signal.signal() }
        case .notification(let payload):
            // Every coordinator hears every batch: with nobody watching, that costs one atomic load.
            guard watcherCount > 0 else { return }
            let ids = TaskNotifications.ids(in: payload)
            let hit = state.withLock { state -> [ChangeSignal] in
                ids.flatMap { state.watchers[$0].map { Array($0.values) } ?? [] }
            }
            for signal in hit { signal.signal() }
        }
    }

    /// Runs `body` with a signal that fires whenever task `id` changes, for as long as `body` runs.
    /// At graceful shutdown the signal is stopped: streams end (their clients resume elsewhere with
    /// `Last-Event-ID`) and waits answer early, so open requests never hold the server's shutdown.
    func watching<T: Sendable>(_ id: TaskID, _ body: (ChangeSignal) async throws -> T) async rethrows -> T {
        let signal = ChangeSignal()
        let key = state.withLock { state -> Int in
            let key = state.nextID
            state.nextID += 1
            state.watchers[id, default: [:]][key] = signal
            return key
        }
        count.add(1, ordering: .relaxed)
        let catchUp = await announceIfDue()
        defer {
            count.subtract(1, ordering: .relaxed)
            state.withLock { state in
                state.watchers[id]?[key] = nil
                if state.watchers[id]?.isEmpty == true { state.watchers[id] = nil }
            }
        }
        return try await withGracefulShutdownHandler {
            guard let catchUp else { return try await body(signal) }
            return try await withThrowingTaskGroup(of: T?.self) { group in
                group.addTask {
                    try? await Task.sleep(until: catchUp)
                    signal.signal()
                    return nil
                }
                let value = try await body(signal)
                group.cancelAll()
                return value
            }
        } onGracefulShutdown: {
            signal.stop()
        }
    }

    func close() { listener.close() }
}
