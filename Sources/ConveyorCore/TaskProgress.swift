/// How far a running attempt has got, as its handler reports it: a fraction, a step count, a message,
/// or any mix of them. Progress is information for the caller; it never changes a task's status.
public struct TaskProgress: Sendable, Hashable {
    /// 0 to 1.
    public var fraction: Double?
    /// The step being worked on (from 0).
    public var step: Int?
    public var totalSteps: Int?
    public var message: String?

    /// The longest message kept, in UTF-8 bytes.
    public static let maximumMessageBytes = 1024
    public static let maximumSteps = 1_000_000_000

    /// Validates a report. The one place the rules live, shared by the Swift API, the command channel
    /// and the HTTP route.
    public init(fraction: Double? = nil, step: Int? = nil, totalSteps: Int? = nil, message: String? = nil) throws(ProgressError) {
        guard fraction != nil || step != nil || totalSteps != nil || message != nil else {
            throw ProgressError("a progress report needs at least one of fraction, step, total_steps and message")
        }
        if let fraction, !(fraction >= 0 && fraction <= 1) {
            throw ProgressError("fraction must be a number from 0 to 1")
        }
        if let step, !(0...Self.maximumSteps).contains(step) {
            throw ProgressError("step must be an integer from 0 to \(Self.maximumSteps)")
        }
        if let totalSteps, !(1...Self.maximumSteps).contains(totalSteps) {
            throw ProgressError("total_steps must be an integer from 1 to \(Self.maximumSteps)")
        }
        if let step, let totalSteps, step > totalSteps {
            throw ProgressError("step (\(step)) must not exceed total_steps (\(totalSteps))")
        }
        if let message {
            guard message.utf8.count <= Self.maximumMessageBytes else {
                throw ProgressError("message must be at most \(Self.maximumMessageBytes) bytes")
            }
            guard !message.utf8.contains(0) else { throw ProgressError("message must not contain U+0000") }
        }
        self.fraction = fraction
        self.step = step
        self.totalSteps = totalSteps
        self.message = message
    }

    /// Reads a report from a JSON object (`fraction`, `step`, `total_steps`, `message`): the command
    /// channel's lines and the HTTP route's body. Other keys are refused, so a typo is not silently lost.
    public init(json: JSONValue, allowing extraKeys: Set<String> = []) throws(ProgressError) {
        guard case .object(let members) = json else { throw ProgressError("a progress report must be a JSON object") }
        let known: Set<String> = ["fraction", "step", "total_steps", "message"]
        if let unknown = members.keys.sorted().first(where: { !known.contains($0) && !extraKeys.contains($0) }) {
            throw ProgressError("unknown field '\(unknown)' (known: fraction, step, total_steps, message)")
        }
        func number(_ key: String) throws(ProgressError) -> Double? {
            switch members[key] {
            case nil, .null?: return nil
            case .integer(let value)?: return Double(value)
            case .double(let value)?: return value
            default: throw ProgressError("\(key) must be a number")
            }
        }
        func integer(_ key: String) throws(ProgressError) -> Int? {
            switch members[key] {
            case nil, .null?: return nil
            case let value?:
                guard let integer = value.intValue, let int = Int(exactly: integer) else { throw ProgressError("\(key) must be an integer") }
                return int
            }
        }
        var message: String?
        switch members["message"] {
        case nil, .null?: message = nil
        case .string(let value)?: message = value
        default: throw ProgressError("message must be a string")
        }
        try self.init(fraction: try number("fraction"), step: try integer("step"), totalSteps: try integer("total_steps"), message: message)
    }

    /// The report as compact JSON, with the attempt it belongs to and when it was made: the form
    /// stored in `tasks.progress` and in the history, and shown by the API. `agent`, who made it, is
    /// in the stored form (and so in the API's), not in the history's (whose rows have an agent column):
    /// it tells the run that finished a task from a duplicate run of the same attempt.
    public func json(attempt: Int, atMillis: Int64, agent: String? = nil) -> String {
        var out = "{"
        if let fraction { out += "\"fraction\":\(fraction)," }
        if let step { out += "\"step\":\(step)," }
        if let totalSteps { out += "\"total_steps\":\(totalSteps)," }
        if let message {
            out += "\"message\":"
            JSONValue.writeString(message, into: &out)
            out += ","
        }
        if let agent {
            out += "\"agent\":"
            JSONValue.writeString(agent, into: &out)
            out += ","
        }
        out += "\"attempt\":\(attempt),\"updated_at\":\"\(UTCTime.format(millis: atMillis))\"}"
        return out
    }

    /// The report's fields on an events-stream entry (`p_fraction`, `p_step`, `p_total`, `p_message`).
    public var fields: [(String, String)] {
        var fields: [(String, String)] = []
        if let fraction { fields.append(("p_fraction", String(fraction))) }
        if let step { fields.append(("p_step", String(step))) }
        if let totalSteps { fields.append(("p_total", String(totalSteps))) }
        if let message { fields.append(("p_message", message)) }
        return fields
    }

    /// Decodes ``fields``; nil when the entry carries no progress.
    public init?(fields: [String: String]) throws(ProgressError) {
        let fraction = fields["p_fraction"], step = fields["p_step"], total = fields["p_total"], message = fields["p_message"]
        guard fraction != nil || step != nil || total != nil || message != nil else { return nil }
        func parsed<T: LosslessStringConvertible>(_ text: String?, _ name: String) throws(ProgressError) -> T? {
            guard let text else { return nil }
            guard let value = T(text) else { throw ProgressError("\(name) is not a number") }
            return value
        }
        try self.init(
            fraction: try parsed(fraction, "p_fraction"), step: try parsed(step, "p_step"), totalSteps: try parsed(total, "p_total"),
            message: message)
    }
}

/// Why a progress report was refused.
public struct ProgressError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
