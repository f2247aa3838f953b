/// The identity of a workflow: an int64 from its own PostgreSQL sequence.
public struct WorkflowID: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: Int64

    public init(rawValue: Int64) { self.rawValue = rawValue }

    /// Parses a decimal id; nil for anything that is not a positive int64.
    public init?(_ text: some StringProtocol) {
        guard let value = Int64(text), value > 0 else { return nil }
        self.rawValue = value
    }

    public var description: String { String(rawValue) }

    public static func < (lhs: WorkflowID, rhs: WorkflowID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A workflow's status: `running` until every node has ended, then how it ended.
public enum WorkflowStatus: String, Sendable, Hashable, CaseIterable {
    case running, succeeded, failed, cancelled
}
