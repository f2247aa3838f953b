/// Correlation ids tie every log line, stream entry and lifecycle event of one task together.
public enum CorrelationID {
    /// The longest correlation id accepted from a client; longer ones are replaced by a fresh id.
    public static let maximumLength = 128

    /// A fresh random id: 32 lowercase hex digits (128 random bits).
    public static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        return make(using: &generator)
    }

    /// Written as 32 bytes into one string: every request without an id of its own makes one, and
    /// formatting each half with `String(_:radix:)`, padding and joining cost four allocations.
    public static func make(using generator: inout some RandomNumberGenerator) -> String {
        let halves = (generator.next() as UInt64, generator.next() as UInt64)
        return String(unsafeUninitializedCapacity: 32) { bytes in
            for index in 0..<32 {
                let half = index < 16 ? halves.0 : halves.1
                let nibble = UInt8(truncatingIfNeeded: half >> (60 - 4 * UInt64(index % 16))) & 0xF
                bytes[index] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
            }
            return 32
        }
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
}
