import ConveyorCore
import Synchronization

/// Whether anyone listens for task changes, so that the Recorder pays for `NOTIFY` only then.
///
/// A coordinator with open streams or waits announces it (``announce(on:)``: `watchers_until` in
/// `conveyor_meta`, 30 s ahead, renewed every 10 s while it has watchers). A Recorder looks at that row at
/// most once a second, inside its own transaction, and notifies while it is in the future. Without
/// watchers anywhere, a batch costs nothing extra but that one lookup a second.
///
/// The gap: a Recorder may still use its answer of up to a second ago when the first watcher arrives,
/// so a fresh announcement is followed by one re-read of every watcher (``TaskWatchHub``).
public final class NotificationGate: Sendable {
    private struct State {
        var open = false
        var checkedAt: ContinuousClock.Instant?
    }

    private let state = Mutex(State())

    /// How long a Recorder trusts its last look.
    public static let recheckAfter = Duration.seconds(1)
    /// How far ahead an announcement reaches, and how often a coordinator with watchers renews it.
    public static let announcementSpan = Duration.seconds(30)
    public static let renewAfter = Duration.seconds(10)
    static let key = "watchers_until"

    public init() {}

    /// Whether to notify, looking at the announcement at most once per ``recheckAfter``.
    func isOpen(on session: PostgresSession, now: ContinuousClock.Instant = .now) throws(PostgresError) -> Bool {
        if let cached = state.withLock({ state -> Bool? in
            guard let checked = state.checkedAt, checked.duration(to: now) < Self.recheckAfter else { return nil }
            return state.open
        }) { return cached }
        let open = try session.query(
            "SELECT value::timestamptz > now() FROM conveyor_meta WHERE key = $1", [Self.key], name: "watchers announced"
        ).rows.first?[0] == "t"
        state.withLock { $0 = State(open: open, checkedAt: now) }
        return open
    }

    /// Announces watchers on this coordinator for the next ``announcementSpan``. Returns whether the
    /// announcement had lapsed (then Recorders may not have notified for up to ``recheckAfter``).
    public static func announce(on client: PostgresClient) async throws -> Bool {
        let span = announcementSpan.milliseconds
        return try await client.withSession { session in
            let rows = try session.query("""
                WITH previous AS (SELECT value FROM conveyor_meta WHERE key = $1)
                INSERT INTO conveyor_meta (key, value, updated_at)
                VALUES ($1, (now() + $2::bigint * interval '1 millisecond')::text, now())
                ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
                RETURNING (SELECT coalesce(value::timestamptz <= now(), true) FROM previous)
                """, [key, String(span)], name: "announce watchers").rows
            return rows.first?[0] != "f"
        }
    }
}
