import Synchronization

/// Correlation ids tie every log line, stream entry and lifecycle event of one task together.
public enum CorrelationID {
    /// The longest correlation id accepted from a client; longer ones are replaced by a fresh id.
    public static let maximumLength = 128

    /// A fresh random id: 32 lowercase hex digits (128 random bits), also for nonces and tokens.
    public static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        return make(using: &generator)
    }

    /// Written as 32 bytes into one string: every request without an id of its own makes one, and
    /// formatting each half with `String(_:radix:)`, padding and joining cost four allocations.
    public static func make(using generator: inout some RandomNumberGenerator) -> String {
        let halves = (generator.next() as UInt64, generator.next() as UInt64)
        return hexDigits(halves.0, halves.1)
    }

    /// A fresh id for a request or a scheduled run: 32 lowercase hex digits like ``make()``, the first
    /// 12 the Unix time in milliseconds and the other 20 random (80 bits), so ids sort by when they were
    /// made. The tasks' correlation index (`tasks_correlation`) then grows at its right edge, where its
    /// pages are in memory, instead of at a random leaf per request. Not for secrets: the time is readable,
    /// and the random part comes from ``SequenceRandom`` (unique within the process, unpredictable only
    /// across processes).
    public static func timeOrdered(atMillis millis: Int64 = WallClock.nowMillis()) -> String {
        var generator = SequenceRandom()
        return timeOrdered(atMillis: millis, using: &generator)
    }

    public static func timeOrdered(atMillis millis: Int64, using generator: inout some RandomNumberGenerator) -> String {
        let time = UInt64(clamping: max(0, millis)) & 0xFFFF_FFFF_FFFF
        let random = (generator.next() as UInt64, generator.next() as UInt64)
        // 48 bits of time, then 16 + 64 random bits.
        return hexDigits(time << 16 | random.0 >> 48, random.1)
    }

    /// Two 64-bit halves as 32 hex digits, written into one string.
    private static func hexDigits(_ first: UInt64, _ second: UInt64) -> String {
        String(unsafeUninitializedCapacity: 32) { bytes in
            for index in 0..<32 {
                let half = index < 16 ? first : second
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

extension CorrelationID {
    /// The random bits of ``CorrelationID/timeOrdered(atMillis:)``: SplitMix64 over a process-wide counter
    /// with a seed drawn once from the system's generator. `SystemRandomNumberGenerator` asks the kernel
    /// (`getrandom`) on every call (`strace -c`: 1,004 calls for 1,000 draws), twice per request without a
    /// correlation id of its own; `timeOrdered` was 2.5 % of the coordinator's samples under `GET /health`
    /// (`perf`, this machine). SplitMix64's finalizer is a bijection,
    /// so within one process no two draws repeat before 2^64 of them; across processes the seeds differ.
    /// Not for secrets: ``make()`` keeps the system's generator for nonces and tokens.
    public struct SequenceRandom: RandomNumberGenerator {
        private static let seed: UInt64 = {
            var system = SystemRandomNumberGenerator()
            return system.next()
        }()
        private static let draws = Atomic<UInt64>(0)

        public init() {}

        public mutating func next() -> UInt64 {
            let draw = Self.draws.wrappingAdd(1, ordering: .relaxed).newValue
            var mixed = Self.seed &+ draw &* 0x9E37_79B9_7F4A_7C15
            mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
            mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
            return mixed ^ (mixed >> 31)
        }
    }
}
