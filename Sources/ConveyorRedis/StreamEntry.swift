/// One entry read from a stream.
public struct StreamEntry: Sendable, Hashable {
    /// The stream id, `<ms>-<seq>`.
    public var id: String
    /// The field/value pairs; nil when the entry was deleted after it was delivered (Redis then returns
    /// the id alone).
    public var fields: [String: String]?

    public init(id: String, fields: [String: String]?) {
        self.id = id
        self.fields = fields
    }

    /// Decodes `[id, [field, value, …]]`, as XRANGE, XREADGROUP and XCLAIM return entries.
    public init(reply: RedisReply) throws(RedisError) {
        guard let parts = reply.array, parts.count == 2, let id = parts[0].string else {
            throw RedisError(.unexpectedReply, "stream entry is not [id, fields]")
        }
        self.id = id
        guard let flat = parts[1].array else {
            self.fields = nil
            return
        }
        var fields: [String: String] = [:]
        fields.reserveCapacity(flat.count / 2)
        var index = 0
        while index + 1 < flat.count {
            if let key = flat[index].string { fields[key] = flat[index + 1].string ?? "" }
            index += 2
        }
        self.fields = fields
    }
}

/// What XAUTOCLAIM returns: the entries claimed, the cursor to continue from ("0-0" when done), and the
/// ids that were still pending but whose entries were deleted meanwhile (Redis 7; empty on 6.2).
public struct AutoClaimResult: Sendable, Hashable {
    public var nextCursor: String
    public var entries: [StreamEntry]
    public var deletedIDs: [String]
}
