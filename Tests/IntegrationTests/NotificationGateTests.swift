import ConveyorCore
import ConveyorPostgres
import ConveyorTesting
import Synchronization
import Testing

@Suite("Task-change notifications cost nothing while nobody watches")
struct NotificationGateTests {
    final class Heard: Sendable {
        let ids = Mutex<Set<Int64>>([])
        func add(_ payload: String) { ids.withLock { $0.formUnion(TaskNotifications.ids(in: payload).map(\.rawValue)) } }
        func contains(_ id: Int64) -> Bool { ids.withLock { $0.contains(id) } }
    }

    @Test("the Recorder notifies only while some coordinator announces watchers")
    func gated() async throws {
        let stack = try await Stack.start()
        let heard = Heard()
        let listener = PostgresListener(configuration: stack.environment.postgres, channel: TaskNotifications.channel, logger: TestServers.quietLogger)
        let listening = Task { await listener.run { if case .notification(let payload) = $0 { heard.add(payload) } } }
        try await Task.sleep(for: .milliseconds(300))

        let unwatched = try await stack.submit("noop")
        #expect(try await stack.waitUntilTerminal([unwatched])[unwatched] == .succeeded)
        try await Task.sleep(for: .milliseconds(500))
        #expect(!heard.contains(unwatched), "nobody watches: no NOTIFY")

        #expect(try await NotificationGate.announce(on: stack.coordinator.postgres), "the first announcement finds none in force")
        try await Task.sleep(for: NotificationGate.recheckAfter + .milliseconds(200))
        let watched = try await stack.submit("noop")
        #expect(try await stack.waitUntilTerminal([watched])[watched] == .succeeded)
        for _ in 0..<60 where !heard.contains(watched) { try await Task.sleep(for: .milliseconds(50)) }
        #expect(heard.contains(watched), "with watchers announced, the batch notifies")
        #expect(try await NotificationGate.announce(on: stack.coordinator.postgres) == false, "a renewal finds it in force")

        listening.cancel()
        _ = await listening.value
        listener.close()
        try await stack.stop()
    }
}
