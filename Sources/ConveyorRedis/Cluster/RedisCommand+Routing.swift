/// Which node of a cluster a command belongs on.
extension RedisCommand {
    /// Where a cluster client sends a command.
    public enum Route: Sendable, Hashable {
        /// To the primary that owns this slot (the slot of the command's first key).
        case slot(Int)
        /// To every primary (SCRIPT LOAD: a script must be known wherever a queue may live).
        case everyPrimary
        /// To any one primary: the command names no key (PING, INFO, CONFIG GET, TIME).
        case anyPrimary
    }

    /// Commands that name no key and are sent to one primary, whichever.
    private static let keyless: Set<String> = [
        "PING", "INFO", "CONFIG", "TIME", "DBSIZE", "CLUSTER", "CLIENT", "COMMAND", "ECHO", "LASTSAVE", "ROLE",
    ]
    /// Commands that must reach every primary.
    private static let broadcast: Set<String> = ["SCRIPT", "FLUSHALL", "FLUSHDB"]

    /// The command's route, from its name and where that command keeps its first key.
    public var route: Route {
        let name = self.name.uppercased()
        if Self.broadcast.contains(name) { return .everyPrimary }
        if Self.keyless.contains(name) { return .anyPrimary }
        let index: Int?
        switch name {
        case "EVALSHA", "EVAL", "EVALSHA_RO", "EVAL_RO", "FCALL", "FCALL_RO":
            // name, script, numkeys, key…: a script without keys may run anywhere.
            index = argumentCount > 3 && argument(2) != "0" ? 3 : nil
        case "XREADGROUP", "XREAD":
            // After GROUP <group> <consumer> for XREADGROUP, so that a group or consumer named
            // "streams" is not taken for the keyword.
            let first = name == "XREADGROUP" ? 4 : 1
            index = first < argumentCount ? (first..<argumentCount).first { argument($0).uppercased() == "STREAMS" }.map { $0 + 1 } : nil
        case "XINFO", "XGROUP", "OBJECT", "MEMORY":
            index = 2
        case "SCAN":
            // A cursor, not a key: a pattern within one hash tag names that tag's slot (a queue's keys).
            guard let match = (1..<argumentCount).first(where: { argument($0).uppercased() == "MATCH" }), match + 1 < argumentCount,
                let tag = Self.hashTag(argument(match + 1)), !tag.contains(where: { "*?[]\\".contains($0) })
            else { return .anyPrimary }
            return .slot(slot(ofArgument: match + 1))
        default:
            index = 1
        }
        guard let index, index < argumentCount else { return .anyPrimary }
        return .slot(slot(ofArgument: index))
    }

    /// The hash tag of a key or pattern: between the first `{` and the next `}`, when not empty.
    static func hashTag(_ key: String) -> Substring? {
        guard let open = key.firstIndex(of: "{"), let close = key[key.index(after: open)...].firstIndex(of: "}"),
            close > key.index(after: open)
        else { return nil }
        return key[key.index(after: open)..<close]
    }

    /// The argument as text (for routing and error messages; arguments may hold task params, so never
    /// log one).
    func argument(_ index: Int) -> String {
        String(decoding: bytes[byteRange(ofArgument: index)], as: UTF8.self)
    }

    private func slot(ofArgument index: Int) -> Int {
        let range = byteRange(ofArgument: index)
        return bytes.withUnsafeBufferPointer { HashSlot.of(bytes: UnsafeBufferPointer(rebasing: $0[range])) }
    }

    /// Where an argument's bytes are in the flat buffer.
    private func byteRange(ofArgument index: Int) -> Range<Int> {
        let start = lengths[..<index].reduce(0, +)
        return start..<(start + lengths[index])
    }
}
