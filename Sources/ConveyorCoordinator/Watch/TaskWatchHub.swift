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
public final class TaskWatchHub: Service, Sendable {
    private struct State {
        var watchers: [TaskID: [Int: ChangeSignal]] = [:]
        var nextID = 0
    }

    private let listener: PostgresListener
    private let state = Mutex(State())
    private let count = Atomic<Int>(0)

    init(listener: PostgresListener) {
        self.listener = listener
    }

    /// Watchers registered now (streams and waits).
    public var watcherCount: Int { count.load(ordering: .relaxed) }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await self.listener.run { event in self.handle(event) }
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
        defer {
            count.subtract(1, ordering: .relaxed)
            state.withLock { state in
                state.watchers[id]?[key] = nil
                if state.watchers[id]?.isEmpty == true { state.watchers[id] = nil }
            }
        }
        return try await withGracefulShutdownHandler {
            try await body(signal)
        } onGracefulShutdown: {
            signal.stop()
        }
    }

    func close() { listener.close() }
}
