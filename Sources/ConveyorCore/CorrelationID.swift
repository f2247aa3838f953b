/// Correlation ids tie every log line, stream entry and lifecycle event of one task together.
public enum CorrelationID {
    /// The longest correlation id accepted from a client; longer ones are replaced by a fresh id.
    public static let maximumLength = 128

    /// A fresh random id: 32 lowercase hex digits (128 random bits).
    public static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        return make(using: &generator)
    }

    public static func make(using generator: inout some RandomNumberGenerator) -> String {
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        return hex(high) + hex(low)
    }

    /// Returns the client's id when it is safe to log and store as-is (printable ASCII without spaces
    /// or quotes, at most ``maximumLength`` bytes), otherwise nil so that the caller makes a new one.
    public static func sanitize(_ candidate: String?) -> String? {
        guard let candidate, !candidate.isEmpty, candidate.utf8.count <= maximumLength else { return nil }
        for byte in candidate.utf8 {
            guard byte > 0x20, byte < 0x7F, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") else { return nil }
        }
        return candidate
    }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
