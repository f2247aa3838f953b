extension Array where Element == UInt8 {
    /// Appends `value`'s decimal digits, most significant first, with no intermediate string.
    ///
    /// The writers of the hot path (COPY rows, RESP pipelines, compact events) put numbers straight into
    /// their byte buffers with it; `String(value)` would allocate once per number of every task.
    @inlinable
    public mutating func appendDecimalDigits(of value: UInt64) {
        var divisor: UInt64 = 1
        while divisor <= value / 10 { divisor *= 10 }
        var rest = value
        repeat {
            append(UInt8(truncatingIfNeeded: 0x30 + rest / divisor))
            rest %= divisor
            divisor /= 10
        } while divisor > 0
    }
}
