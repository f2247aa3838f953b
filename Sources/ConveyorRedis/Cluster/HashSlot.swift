/// The cluster slot of a key: CRC16 (XMODEM) of the key, or of its hash tag, modulo 16,384, as the Redis
/// Cluster specification defines it. Every key of one queue has the tag `{queue}`, so they share a slot.
public enum HashSlot {
    public static let count = 16_384

    /// The slot of a key given as text.
    public static func of(_ key: String) -> Int {
        var key = key
        return key.withUTF8 { of(bytes: $0) }
    }

    /// The slot of a key given as bytes: only the part between the first `{` and the next `}` counts
    /// when that part is not empty.
    public static func of(bytes key: UnsafeBufferPointer<UInt8>) -> Int {
        if let open = key.firstIndex(of: UInt8(ascii: "{")),
            let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
        {
            return Int(crc16(UnsafeBufferPointer(rebasing: key[(open + 1)..<close])) & 0x3FFF)
        }
        return Int(crc16(key) & 0x3FFF)
    }

    /// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, no reflection. Table-driven: the slot
    /// is computed for every command a cluster client routes.
    static func crc16(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 {
            crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
        }
        return crc
    }
}
