import Foundation

/// Any JSON value. Task params and results are opaque to the broker: it keeps them as values, checks
/// that they are well-formed, and serialises them once into the compact text stored in Redis and PostgreSQL.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case integer(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Parses a complete JSON text.
    public static func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        var text = text
        return try text.withUTF8 { bytes in parse(bytes) }.get()
    }

    public static func parse(_ data: Data) throws(JSONParseError) -> JSONValue {
        try data.withUnsafeBytes { raw in parse(raw.bindMemory(to: UInt8.self)) }.get()
    }

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> Result<JSONValue, JSONParseError> {
        var parser = JSONTextParser(bytes)
        return Result { () throws(JSONParseError) in try parser.parseDocument() }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    public var intValue: Int64? {
        switch self {
        case .integer(let value): value
        case .double(let value) where value == value.rounded() && abs(value) < 9.0e18: Int64(value)
        default: nil
        }
    }

    /// Whether a string anywhere inside (keys included) holds a NUL character, which PostgreSQL cannot
    /// store in jsonb or text.
    public var containsNUL: Bool {
        switch self {
        case .string(let value): value.utf8.contains(0)
        case .array(let elements): elements.contains { $0.containsNUL }
        case .object(let members): members.contains { $0.key.utf8.contains(0) || $0.value.containsNUL }
        default: false
        }
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// Compact JSON text with object keys sorted, so equal values always serialise alike.
    public var serialized: String {
        var out = ""
        out.reserveCapacity(64)
        write(into: &out)
        return out
    }

    /// Serialisation is on the submit path for every task; it is written by hand because `JSONEncoder`
    /// through `Codable` costs several times more per value.
    public func write(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let value): out += value ? "true" : "false"
        case .integer(let value): out += String(value)
        case .double(let value):
            if value.isFinite {
                if value == value.rounded(), abs(value) < 1e15 {
                    out += String(Int64(value))
                } else {
                    out += String(value)
                }
            } else {
                out += "null"
            }
        case .string(let value): Self.writeString(value, into: &out)
        case .array(let elements):
            out += "["
            for (index, element) in elements.enumerated() {
                if index > 0 { out += "," }
                element.write(into: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (index, key) in members.keys.sorted().enumerated() {
                if index > 0 { out += "," }
                Self.writeString(key, into: &out)
                out += ":"
                members[key]!.write(into: &out)
            }
            out += "}"
        }
    }

    /// Writes `value` as a JSON string literal, escaping quotes, backslashes and control characters.
    /// A NUL character is written as U+FFFD: PostgreSQL's jsonb cannot store `\u0000`, and one such value
    /// must not make a whole batch fail.
    public static func writeString(_ value: String, into out: inout String) {
        guard needsEscape(value) else {
            out += "\""
            out += value
            out += "\""
            return
        }
        // Rare (a quote, a backslash or a control character): the byte form holds the one escape table.
        var bytes: [UInt8] = []
        writeString(value, into: &bytes)
        out += String(decoding: bytes, as: UTF8.self)
    }

    /// Whether `value` holds a character a JSON string literal must escape.
    private static func needsEscape(_ value: String) -> Bool {
        value.utf8.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }
    }
}

extension JSONValue {
    /// ``writeString(_:into:)`` into bytes, with the same output for every string: for the writers of
    /// the hot path that build their text as bytes (a history row's detail, once per event).
    public static func writeString(_ value: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        guard needsEscape(value) else {
            out.append(contentsOf: value.utf8)
            out.append(UInt8(ascii: "\""))
            return
        }
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): out.append(contentsOf: #"\\"#.utf8)
            case UInt8(ascii: "\n"): out.append(contentsOf: #"\n"#.utf8)
            case UInt8(ascii: "\r"): out.append(contentsOf: #"\r"#.utf8)
            case UInt8(ascii: "\t"): out.append(contentsOf: #"\t"#.utf8)
            case 0: out.append(contentsOf: #"\ufffd"#.utf8)
            case ..<0x20:
                out.append(contentsOf: #"\u00"#.utf8)
                out.append(Self.hexDigits[Int(byte >> 4)])
                out.append(Self.hexDigits[Int(byte & 0xF)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
}

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else if let value = try? container.decode([String: JSONValue].self) {
            self = .object(value)
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a JSON value")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}
