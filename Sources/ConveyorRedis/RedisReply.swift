/// One Redis reply, copied out of hiredis' `redisReply` at once so that no C memory outlives the call.
///
/// A command-level error (`-ERR …`, `-NOSCRIPT …`) is a value, not a thrown error: in a pipeline one
/// command may fail while the others succeed.
public enum RedisReply: Sendable, Hashable {
    case status(String)
    case error(String)
    case integer(Int64)
    case bulk([UInt8])
    case null
    case array([RedisReply])

    /// The reply as text: status, bulk string or integer.
    public var string: String? {
        switch self {
        case .status(let text): text
        case .bulk(let bytes): String(decoding: bytes, as: UTF8.self)
        case .integer(let value): String(value)
        default: nil
        }
    }

    public var integer: Int64? {
        switch self {
        case .integer(let value): value
        case .bulk, .status: string.flatMap { Int64($0) }
        default: nil
        }
    }

    public var array: [RedisReply]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The error text when the reply is an error.
    public var errorMessage: String? {
        if case .error(let message) = self { return message }
        return nil
    }
}
