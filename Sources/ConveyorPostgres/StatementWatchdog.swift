#if canImport(Glibc)
import Glibc
#endif
import ConveyorCore
import Foundation
import Synchronization

/// Bounds every statement's wait on a server that accepted the connection but stopped answering (a
/// frozen process, a black-holed network): past its deadline, the statement's socket is shut down from
/// this thread, so the blocked libpq call on the connection's own thread returns at once with an error.
///
/// Why not `statement_timeout` alone: a frozen server enforces nothing, and TCP keepalives are answered
/// by its kernel. Why not libpq's nonblocking API with a poll per call: the COPY and query paths would
/// all need rewriting, and this covers every one of them in one place.
///
/// Safety: a deadline is disarmed under the same lock the watchdog holds while it shuts a socket down,
/// and a session disarms before it ever closes its connection, so the watchdog never touches a file
/// descriptor that was closed and reused.
final class StatementWatchdog: Sendable {
    struct Token: Hashable, Sendable {
        fileprivate let id: Int
    }

    private struct Armed {
        var socket: Int32
        var deadline: ContinuousClock.Instant
        var fired = false
    }

    private struct State {
        var nextID = 0
        var armed: [Int: Armed] = [:]
    }

    private let state = Mutex(State())

    static let shared = StatementWatchdog()

    /// How often deadlines are checked: statement deadlines are seconds long, so 50 ms is precise enough
    /// and the thread costs nothing measurable.
    static let resolution = Duration.milliseconds(50)

    private init() {
        let thread = Thread { [self] in watch() }
        thread.name = "conveyor-pg-watchdog"
        thread.start()
    }

    func arm(socket: Int32, timeout: Duration) -> Token {
        state.withLock { state in
            state.nextID += 1
            state.armed[state.nextID] = Armed(socket: socket, deadline: .now + timeout)
            return Token(id: state.nextID)
        }
    }

    /// Returns whether the deadline had passed (and the socket was shut down).
    func disarm(_ token: Token) -> Bool {
        state.withLock { $0.armed.removeValue(forKey: token.id)?.fired ?? false }
    }

    private func watch() {
        let microseconds = UInt32(Self.resolution.milliseconds * 1000)
        while true {
            usleep(microseconds)
            let now = ContinuousClock.now
            state.withLock { state in
                for (id, armed) in state.armed where !armed.fired && armed.deadline <= now {
                    _ = shutdown(armed.socket, Int32(SHUT_RDWR))
                    state.armed[id]?.fired = true
                }
            }
        }
    }
}
