import Foundation

/// Reads RFC 3339 times from clients (`run_at`). Not a hot path: only scheduled submissions parse one.
public enum RFC3339 {
    /// Unix ms of `2026-12-01T09:30:00Z`, `2026-12-01T09:30:00.250+01:00` and the like, or nil.
    public static func parseMillis(_ text: String) -> Int64? {
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        if let date = plain.date(from: text) { return Int64((date.timeIntervalSince1970 * 1000).rounded()) }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = fractional.date(from: text) { return Int64((date.timeIntervalSince1970 * 1000).rounded()) }
        return nil
    }
}
