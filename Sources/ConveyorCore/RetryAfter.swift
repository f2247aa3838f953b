import Foundation

/// Reads an HTTP `Retry-After` header (RFC 9110 §10.2.3), as both the push handler and the webhook
/// dispatcher honour it: a floor on the wait before the next try.
public enum RetryAfter {
    /// The wait: delay-seconds, or an HTTP date. Nil when unreadable.
    public static func parse(_ value: String, nowMillis: Int64) -> Duration? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Int64(trimmed), seconds >= 0 { return .seconds(seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: trimmed) else { return nil }
        return .milliseconds(max(0, Int64(date.timeIntervalSince1970 * 1000) - nowMillis))
    }
}
