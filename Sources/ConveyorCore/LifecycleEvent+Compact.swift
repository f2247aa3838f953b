/// The compact form of a lifecycle event on the events stream: one field, `e`, whose value holds every
/// field as `<name>=<byte length>:<value>`, one after the other.
///
/// Why: every field of a stream entry is a separate string at each hop. Redis creates an object for it
/// inside the Completer's script, appends it to the stream's listpack, writes it to the AOF, and sends it
/// back in the Recorder's XREADGROUP reply; hiredis allocates a reply for it and the Recorder a Swift
/// string. At the throughput ceiling that per-string work, not the commands, was most of Redis' CPU
/// (malloc, sds, object and AOF formatting in `perf`), and an outcome event has ten fields. One field
/// cuts those twenty strings to two. The length prefix makes any value (a result, an error text) safe
/// without escaping.
///
/// Agents write it (the Completer, the progress relay); Lua scripts and older agents still write the
/// spelled-out fields (``LifecycleEvent/fields``), and every reader accepts both through
/// ``LifecycleEvent/expanded(_:)``.
extension LifecycleEvent {
    /// The field that carries the compact form.
    public static let compactField = "e"

    /// The event as one field/value pair: `[("e", …)]`.
    public var compactFields: [(String, String)] {
        [(Self.compactField, Self.pack(fields))]
    }

    /// `fields` written as `<name>=<byte length>:<value>` one after the other.
    static func pack(_ fields: [(String, String)]) -> String {
        var packed = ""
        packed.reserveCapacity(fields.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 6 })
        for (name, value) in fields {
            packed += name
            packed += "="
            packed += String(value.utf8.count)
            packed += ":"
            packed += value
        }
        return packed
    }

    /// The fields of an events-stream entry with the compact form opened up; other entries as they are.
    public static func expanded(_ fields: [String: String]) throws(EnvelopeError) -> [String: String] {
        guard let packed = fields[compactField] else { return fields }
        guard let unpacked = unpack(packed) else {
            throw EnvelopeError(field: compactField, reason: "not a compact event (<name>=<length>:<value>…)")
        }
        return unpacked
    }

    /// Reads what ``pack(_:)`` wrote; nil when the text is not in that form.
    static func unpack(_ packed: String) -> [String: String]? {
        var packed = packed
        return packed.withUTF8 { bytes -> [String: String]? in
            var fields: [String: String] = [:]
            fields.reserveCapacity(12)
            var at = 0
            while at < bytes.count {
                let nameStart = at
                while at < bytes.count, bytes[at] != UInt8(ascii: "=") { at += 1 }
                guard at < bytes.count, at > nameStart else { return nil }
                let name = String(decoding: UnsafeBufferPointer(rebasing: bytes[nameStart..<at]), as: UTF8.self)
                at += 1
                var length = 0
                let digitsStart = at
                while at < bytes.count, bytes[at] >= UInt8(ascii: "0"), bytes[at] <= UInt8(ascii: "9"), at - digitsStart < 10 {
                    length = length * 10 + Int(bytes[at] - UInt8(ascii: "0"))
                    at += 1
                }
                guard at > digitsStart, at < bytes.count, bytes[at] == UInt8(ascii: ":"), length <= bytes.count - at - 1 else { return nil }
                at += 1
                fields[name] = String(decoding: UnsafeBufferPointer(rebasing: bytes[at..<at + length]), as: UTF8.self)
                at += length
            }
            return fields
        }
    }
}
