/// One field of a stream entry, as Redis returns it: entries keep the order their fields were written in.
public struct StreamField: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

extension Array where Element == StreamField {
    /// The fields by name; a name written twice keeps its last value.
    public var byName: [String: String] {
        Dictionary(lazy.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 })
    }
}
