/// One field of a stream entry, as Redis returns it: entries keep the order their fields were written in.
public struct StreamField: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}
