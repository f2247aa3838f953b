/// The head of an HTTP/1.x reply, read from its bytes where they lie (see
/// ``EventLoopSender/parseReply(_:)``).
enum ReplyHead {
    case incomplete
    case malformed(String)
    /// `headBytes` counts the status line and headers with the blank line after them.
    case complete(status: Int, retryAfter: Bool, headBytes: Int, contentLength: Int)

    /// A head this long without its blank line is not a reply the coordinator would send: refused
    /// rather than buffered without end.
    private static let largestHead = 64 * 1024

    static func parse(_ bytes: UnsafeRawBufferPointer) -> ReplyHead {
        guard let headEnd = endOfHead(in: bytes) else {
            return bytes.count > largestHead ? .malformed("reply head over \(largestHead / 1024) KiB") : .incomplete
        }
        let statusEnd = lineEnd(in: bytes, from: 0, before: headEnd)
        guard let status = status(in: bytes, lineEnd: statusEnd) else { return .malformed("not an HTTP/1.x reply") }
        var contentLength: Int?
        var retryAfter = false
        var lineStart = statusEnd + 2
        while lineStart < headEnd {
            let end = lineEnd(in: bytes, from: lineStart, before: headEnd)
            defer { lineStart = end + 2 }
            guard let colon = bytes[lineStart..<end].firstIndex(of: UInt8(ascii: ":")) else { continue }
            let value = trimmed(bytes, from: colon + 1, to: end)
            if equalsIgnoringCase(bytes, from: lineStart, to: colon, "content-length") {
                contentLength = decimal(bytes, value)
            } else if equalsIgnoringCase(bytes, from: lineStart, to: colon, "retry-after") {
                retryAfter = true
            } else if equalsIgnoringCase(bytes, from: lineStart, to: colon, "transfer-encoding"),
                      !equalsIgnoringCase(bytes, from: value.lowerBound, to: value.upperBound, "identity") {
                return .malformed("reply with Transfer-Encoding \(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[value]), as: UTF8.self))")
            }
        }
        guard let length = contentLength else { return .malformed("reply without a valid Content-Length") }
        return .complete(status: status, retryAfter: retryAfter, headBytes: headEnd + 4, contentLength: length)
    }

    /// Where the blank line after the headers starts, or nil when it has not arrived yet.
    private static func endOfHead(in bytes: UnsafeRawBufferPointer) -> Int? {
        var index = 0
        while index + 3 < bytes.count {
            if bytes[index + 3] == 10, bytes[index + 2] == 13, bytes[index + 1] == 10, bytes[index] == 13 { return index }
            index += 1
        }
        return nil
    }

    /// The index of the `\r\n` ending the line that starts at `start` (the head's end for its last line).
    private static func lineEnd(in bytes: UnsafeRawBufferPointer, from start: Int, before end: Int) -> Int {
        var index = start
        while index + 1 < end, !(bytes[index] == 13 && bytes[index + 1] == 10) { index += 1 }
        return index + 1 < end ? index : end
    }

    /// `HTTP/1.<anything> <1–18 digits>[ reason]`, spaces between them.
    private static func status(in bytes: UnsafeRawBufferPointer, lineEnd: Int) -> Int? {
        let prefix = "HTTP/1.".utf8
        guard lineEnd >= prefix.count, zip(prefix, bytes[0..<prefix.count]).allSatisfy({ $0 == $1 }) else { return nil }
        guard var index = bytes[prefix.count..<lineEnd].firstIndex(of: UInt8(ascii: " ")) else { return nil }
        while index < lineEnd, bytes[index] == UInt8(ascii: " ") { index += 1 }
        var end = index
        while end < lineEnd, bytes[end] != UInt8(ascii: " ") { end += 1 }
        return decimal(bytes, index..<end)
    }

    /// The range without leading and trailing spaces and tabs.
    private static func trimmed(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Range<Int> {
        var lower = start
        var upper = end
        while lower < upper, bytes[lower] == UInt8(ascii: " ") || bytes[lower] == UInt8(ascii: "\t") { lower += 1 }
        while upper > lower, bytes[upper - 1] == UInt8(ascii: " ") || bytes[upper - 1] == UInt8(ascii: "\t") { upper -= 1 }
        return lower..<upper
    }

    /// A non-negative decimal of at most 18 digits, or nil.
    private static func decimal(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        guard !range.isEmpty, range.count <= 18 else { return nil }
        var value = 0
        for index in range {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            value = value * 10 + Int(digit)
        }
        return value
    }

    /// ASCII case-insensitive comparison of `bytes[start..<end]` with a lowercase `name`.
    private static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int, _ name: StaticString) -> Bool {
        guard end - start == name.utf8CodeUnitCount else { return false }
        let expected = UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        for offset in 0..<expected.count {
            var byte = bytes[start + offset]
            if byte >= UInt8(ascii: "A"), byte <= UInt8(ascii: "Z") { byte |= 0x20 }
            if byte != expected[offset] { return false }
        }
        return true
    }
}
