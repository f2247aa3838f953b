import ConveyorCore

/// One entry read from a stream.
public struct StreamEntry: Sendable, Hashable {
    /// The stream id, `<ms>-<seq>`.
    public var id: String
    /// The fields in the order they were written; nil when the entry was deleted after it was delivered
    /// (Redis then returns the id alone).
    ///
    /// A list rather than a dictionary: the hot reader (an agent decoding a task envelope per entry) takes
    /// every field once, and building and probing a dictionary per entry cost more than one scan over a
    /// dozen fields (`TaskEnvelope.init(fields:)` takes the list).
    public var fieldList: [StreamField]?

    public init(id: String, fieldList: [StreamField]?) {
        self.id = id
        self.fieldList = fieldList
    }

    /// The fields by name, for readers that look up a few of them; a name written twice keeps its last
    /// value, as it did when entries were read into a dictionary.
    public var fields: [String: String]? { fieldList?.byName }

    /// Decodes `[id, [field, value, …]]`, as XRANGE, XREADGROUP and XCLAIM return entries.
    public init(reply: RedisReply) throws(RedisError) {
        guard let parts = reply.array, parts.count == 2, let id = parts[0].string else {
            throw RedisError(.unexpectedReply, "stream entry is not [id, fields]")
        }
        self.id = id
        guard let flat = parts[1].array else {
            self.fieldList = nil
            return
        }
        var fields: [StreamField] = []
        fields.reserveCapacity(flat.count / 2)
        var index = 0
        while index + 1 < flat.count {
            if let name = flat[index].string { fields.append(StreamField(name, flat[index + 1].string ?? "")) }
            index += 2
        }
        self.fieldList = fields
    }
}

/// What XAUTOCLAIM returns: the entries claimed, the cursor to continue from ("0-0" when done), and the
/// ids that were still pending but whose entries were deleted meanwhile (Redis 7; empty on 6.2).
public struct AutoClaimResult: Sendable, Hashable {
    public var nextCursor: String
    public var entries: [StreamEntry]
    public var deletedIDs: [String]
}
