import CLibPQ
#if canImport(Glibc)
import Glibc
#endif

extension PostgresSession {
    /// Waits up to `timeout` for notifications on the channels this session LISTENs to and returns
    /// their payloads (empty when none came). Blocks the connection's thread, which is why a listener
    /// has a connection of its own.
    func waitForNotifications(timeout: Duration) throws(PostgresError) -> [String] {
        let connection = try live()
        var payloads = Self.drainNotifications(connection)
        guard payloads.isEmpty else { return payloads }
        var descriptor = pollfd(fd: PQsocket(connection), events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, Int32(clamping: timeout.milliseconds))
        if ready < 0 && errno != EINTR {
            disconnect()
            throw PostgresError(.connectionLost, "poll failed: errno \(errno)", query: "wait for notifications")
        }
        if ready > 0 {
            // Readable with nothing to read is the server going away: consuming then fails.
            guard PQconsumeInput(connection) == 1, PQstatus(connection) == CONNECTION_OK else {
                let message = String(cString: PQerrorMessage(connection))
                disconnect()
                throw PostgresError(.connectionLost, message, query: "wait for notifications")
            }
            payloads = Self.drainNotifications(connection)
        }
        return payloads
    }

    private static func drainNotifications(_ connection: OpaquePointer) -> [String] {
        var payloads: [String] = []
        while let notification = PQnotifies(connection) {
            payloads.append(String(cString: notification.pointee.extra))
            PQfreemem(notification)
        }
        return payloads
    }
}
