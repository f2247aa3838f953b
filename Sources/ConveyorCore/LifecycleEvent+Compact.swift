/// The compact form of a lifecycle event on the events stream: one field, `e`, whose value holds every
/// field as `<name>=<byte length>:<value>`, one after the other.
///
/// Why: every field of a stream entry is a separate string at each hop. Redis creates an object for it
/// inside the Completer's script, appends it to the stream's listpack, writes it to the AOF, and sends it
/// back in the Recorder's XREADGROUP reply; hiredis allocates a reply for it and the Recorder a Swift
/// string. At the throughput ceiling that per-string work, not the commands, was most of Redis' CPU
/// (malloc, sds, object and AOF formatting in `perf`), and an outcome event has ten fields. One field
/// cuts those twenty strings to two. The length prefix makes any value (a result, an error text) safe
/// without escaping.
///
/// Agents write it (the Completer framed in batches, see ``LifecycleEvent/batchField``; the progress
/// relay alone); Lua scripts and older agents still write the spelled-out fields
/// (``LifecycleEvent/fields``), and every reader takes each form through
/// ``LifecycleEvent/events(inEntry:)``.
extension LifecycleEvent {
    /// The field that carries the compact form.
    public static let compactField = "e"

    /// The event as one field/value pair: `[("e", …)]`.
    public var compactFields: [(String, String)] {
        [(Self.compactField, compactWriter().text)]
    }

    /// Written byte by byte from the properties, in ``fields``' order: the agents build one per task.
    private func compactWriter() -> CompactWriter {
        var packed = CompactWriter()
        packed.append("task", taskID.rawValue)
        packed.append("status", status.rawValue)
        packed.append("attempt", Int64(attempt))
        packed.append("agent", agent)
        packed.append("at", atMillis)
        packed.append("cid", correlationID)
        packed.append("type", type)
        if let startedAtMillis { packed.append("started", startedAtMillis) }
        if let result { packed.append("result", result) }
        if let error { packed.append("error", error) }
        if let dispatchedAtMillis { packed.append("disp", dispatchedAtMillis) }
        if let nextAttemptAtMillis { packed.append("next", nextAttemptAtMillis) }
        if let progress { for (name, value) in progress.fields { packed.append(name, value) } }
        if hasCallback { packed.append("cb", "1") }
        return packed
    }

    /// Calls `body` with each name and value of the compact form, in order; false (after calling it for
    /// the fields before the fault) when the text is not in that form.
    static func forEachField(in bytes: UnsafeBufferPointer<UInt8>, _ body: (String, String) -> Void) -> Bool {
        var at = 0
        while at < bytes.count {
            let nameStart = at
            while at < bytes.count, bytes[at] != UInt8(ascii: "=") { at += 1 }
            guard at < bytes.count, at > nameStart else { return false }
            let name = String(decoding: UnsafeBufferPointer(rebasing: bytes[nameStart..<at]), as: UTF8.self)
            at += 1
            guard let (length, valueStart) = lengthPrefix(in: bytes, at: at) else { return false }
            at = valueStart
            body(name, String(decoding: UnsafeBufferPointer(rebasing: bytes[at..<at + length]), as: UTF8.self))
            at += length
        }
        return true
    }

    /// Reads `<decimal length>:` at `at`: the length, and where the value starts; nil unless the digits,
    /// the colon and that many bytes after it are all there.
    private static func lengthPrefix(in bytes: UnsafeBufferPointer<UInt8>, at start: Int) -> (length: Int, valueStart: Int)? {
        var at = start
        var length = 0
        while at < bytes.count, bytes[at] >= UInt8(ascii: "0"), bytes[at] <= UInt8(ascii: "9"), at - start < 10 {
            length = length * 10 + Int(bytes[at] - UInt8(ascii: "0"))
            at += 1
        }
        guard at > start, at < bytes.count, bytes[at] == UInt8(ascii: ":"), length <= bytes.count - at - 1 else { return nil }
        return (length, at + 1)
    }
}

/// Many events in one stream entry: field `b`, whose value is each event's compact form framed as
/// `<byte length>:<compact form>`, one after the other.
///
/// Why: the Completer acknowledges a batch of tasks in one script call, and an entry per event cost
/// Redis an XADD, an AOF record and a reply entry in the Recorder's read for every task, and the
/// Recorder an entry to parse and an id to acknowledge. The script appends the events of the entries
/// it acknowledged (each framed by the agent) as entries of up to 32 (`Scripts.eventsPerBatchEntry`, which
/// bounds the Recorder's reads). Readers take every form through
/// ``LifecycleEvent/events(inEntry:)``.
extension LifecycleEvent {
    /// The field that carries a batch of framed compact events.
    public static let batchField = "b"

    /// The event's compact form framed for a batch entry: `<byte length>:<compact form>`.
    public var framedCompact: String { compactWriter().framedText }

    /// The events of one events-stream entry: a batch (``batchField``), one compact event or one
    /// spelled-out event. An event that cannot be decoded is a failure in its place; a batch whose framing
    /// breaks ends with one failure for the rest of it.
    public static func events(inEntry fields: [String: String]) -> [Result<LifecycleEvent, EnvelopeError>] {
        var events: [Result<LifecycleEvent, EnvelopeError>] = []
        forEachEvent(inEntry: fields) { events.append($0) }
        return events
    }

    /// ``events(inEntry:)`` handed to `body` one by one, in order: the Recorder appends them straight to
    /// its batch instead of growing an array per entry (an event is some 200 bytes).
    public static func forEachEvent(inEntry fields: [String: String], _ body: (Result<LifecycleEvent, EnvelopeError>) -> Void) {
        guard var batch = fields[batchField] else {
            do { body(.success(try LifecycleEvent(fields: fields))) } catch { body(.failure(error)) }
            return
        }
        batch.withUTF8 { bytes in
            var at = 0
            while at < bytes.count {
                guard let (length, start) = lengthPrefix(in: bytes, at: at) else {
                    body(.failure(EnvelopeError(field: batchField, reason: "not a batch of framed events (<length>:<event>…)")))
                    break
                }
                do throws(EnvelopeError) {
                    let text = try LifecycleEventText(compact: UnsafeBufferPointer(rebasing: bytes[start..<start + length]))
                    body(.success(try LifecycleEvent(text: text)))
                } catch {
                    body(.failure(error))
                }
                at = start + length
            }
        }
    }
}

/// An event's fields as text, before they are checked: filled from the compact form without a
/// dictionary (the Recorder decodes every event of every task; hashing a dozen names each was most of
/// the decoding), or from the spelled-out fields.
struct LifecycleEventText {
    var task, status, attempt, agent, at, cid, type, started, result, error, disp, next, cb: String?
    /// Anything else: the progress report's fields, and names a newer agent may add (ignored).
    var others: [String: String] = [:]

    init(compact packed: String) throws(EnvelopeError) {
        var packed = packed
        let text = packed.withUTF8 { bytes -> Result<LifecycleEventText, EnvelopeError> in
            do throws(EnvelopeError) { return .success(try LifecycleEventText(compact: bytes)) } catch { return .failure(error) }
        }
        self = try text.get()
    }

    init(compact bytes: UnsafeBufferPointer<UInt8>) throws(EnvelopeError) {
        let wellFormed = LifecycleEvent.forEachField(in: bytes) { name, value in set(name, value) }
        guard wellFormed else {
            throw EnvelopeError(field: LifecycleEvent.compactField, reason: "not a compact event (<name>=<length>:<value>…)")
        }
    }

    init(fields: [String: String]) {
        for (name, value) in fields { set(name, value) }
    }

    private mutating func set(_ name: String, _ value: String) {
        switch name {
        case "task": task = value
        case "status": status = value
        case "attempt": attempt = value
        case "agent": agent = value
        case "at": at = value
        case "cid": cid = value
        case "type": type = value
        case "started": started = value
        case "result": result = value
        case "error": error = value
        case "disp": disp = value
        case "next": next = value
        case "cb": cb = value
        default: others[name] = value
        }
    }
}

/// Builds the compact form in a byte buffer: one allocation for the text, no intermediate strings.
private struct CompactWriter {
    var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(192) }

    var text: String { String(decoding: bytes, as: UTF8.self) }

    /// `<byte length>:<text>`, in one string.
    var framedText: String {
        var framed = CompactWriter()
        framed.bytes.reserveCapacity(bytes.count + 8)
        framed.appendDecimal(UInt64(bytes.count))
        framed.bytes.append(UInt8(ascii: ":"))
        framed.bytes.append(contentsOf: bytes)
        return framed.text
    }

    mutating func append(_ name: StaticString, _ value: String) {
        appendName(name)
        appendValue(value)
    }

    mutating func append(_ name: String, _ value: String) {
        bytes.append(contentsOf: name.utf8)
        bytes.append(UInt8(ascii: "="))
        appendValue(value)
    }

    private mutating func appendValue(_ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            appendDecimal(UInt64(utf8.count))
            bytes.append(UInt8(ascii: ":"))
            bytes.append(contentsOf: utf8)
        }
    }

    mutating func append(_ name: StaticString, _ value: Int64) {
        guard value >= 0 else { return append(name, String(value)) }
        appendName(name)
        var digits: UInt64 = 1
        var rest = value.magnitude
        while rest >= 10 {
            rest /= 10
            digits += 1
        }
        appendDecimal(digits)
        bytes.append(UInt8(ascii: ":"))
        appendDecimal(value.magnitude)
    }

    private mutating func appendName(_ name: StaticString) {
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "="))
    }

    mutating func appendDecimal(_ value: UInt64) {
        bytes.appendDecimalDigits(of: value)
    }
}
