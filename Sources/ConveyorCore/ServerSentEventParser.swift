/// One event of a `text/event-stream`.
public struct ServerSentEvent: Sendable, Hashable {
    public var id: String?
    public var event: String
    public var data: String

    public init(id: String?, event: String, data: String) {
        self.id = id
        self.event = event
        self.data = data
    }
}

/// Splits a `text/event-stream` into events, however its bytes are chunked (the WHATWG rules: fields
/// `id`, `event`, `data`; comment lines ignored; a blank line ends an event). For the CLI's
/// `tasks watch` and the tests that follow a task's stream.
public struct ServerSentEventParser: Sendable {
    private var line: [UInt8] = []
    private var id: String?
    private var event = ""
    private var data: [String] = []

    public init() {}

    /// The events completed by `bytes`.
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [ServerSentEvent] {
        var events: [ServerSentEvent] = []
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                if let event = finishLine() { events.append(event) }
            } else if byte != UInt8(ascii: "\r") {
                line.append(byte)
            }
        }
        return events
    }

    private mutating func finishLine() -> ServerSentEvent? {
        defer { line.removeAll(keepingCapacity: true) }
        guard !line.isEmpty else {
            guard !data.isEmpty || !event.isEmpty else { return nil }
            let done = ServerSentEvent(id: id, event: event.isEmpty ? "message" : event, data: data.joined(separator: "\n"))
            event = ""
            data = []
            return done
        }
        if line.first == UInt8(ascii: ":") { return nil }
        let text = String(decoding: line, as: UTF8.self)
        let field: Substring
        var value: Substring = ""
        if let colon = text.firstIndex(of: ":") {
            field = text[..<colon]
            value = text[text.index(after: colon)...]
            if value.first == " " { value = value.dropFirst() }
        } else {
            field = Substring(text)
        }
        switch field {
        case "id": id = String(value)
        case "event": event = String(value)
        case "data": data.append(String(value))
        default: break
        }
        return nil
    }
}
