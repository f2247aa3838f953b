@testable import conveyor_load
import NIOCore
import Testing

@Suite("The load generator's event-loop sender: reading replies")
struct EventLoopSenderTests {
    private func parse(_ chunks: [[UInt8]]) -> [EventLoopSender.ParsedReply] {
        var buffer = ByteBuffer()
        var out: [EventLoopSender.ParsedReply] = []
        for chunk in chunks {
            buffer.writeBytes(chunk)
            while true {
                let parsed = EventLoopSender.parseReply(&buffer)
                if case .incomplete = parsed { break }
                out.append(parsed)
                if case .malformed = parsed { return out }
            }
        }
        return out
    }

    @Test("a reply split anywhere is read once whole: status, Retry-After, and exactly Content-Length bytes of body")
    func splitReplies() throws {
        let created = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 30\r\n\r\n{\"id\":12345,\"status\":\"queued\"}"
        let shed = "HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 21\r\n\r\n{\"code\":\"overloaded\"}"
        let bytes = Array((created + shed).utf8)
        let headEnd = Array(created.utf8).firstIndex(of: UInt8(ascii: "{"))!  // just after the blank line
        // Every split inside the blank line \r\n\r\n, and some elsewhere.
        for split in [1, 17, 60, created.utf8.count - 1, created.utf8.count, created.utf8.count + 40] + Array((headEnd - 4)...headEnd) {
            let replies = parse([Array(bytes[..<split]), Array(bytes[split...])])
            #expect(replies.count == 2, "split at \(split)")
            guard replies.count == 2, case .reply(let status, let retryAfter, let body) = replies[0],
                  case .reply(let shedStatus, let shedRetryAfter, let shedBody) = replies[1] else { continue }
            #expect(status == 201 && !retryAfter)
            #expect(LoadRun.acceptedIDs(in: body, single: true) == [12345])
            #expect(shedStatus == 503 && shedRetryAfter)
            #expect(LoadRun.isShed(status: shedStatus, hasRetryAfter: shedRetryAfter, body: shedBody))
        }
    }

    @Test("only a plain http://host[:port] base URL goes out from the event loops; others keep the general client")
    func targets() {
        let plain = EventLoopSender.target(of: "http://127.0.0.1:8080")
        #expect(plain?.host == "127.0.0.1" && plain?.port == 8080)
        #expect(EventLoopSender.target(of: "http://localhost/")?.port == 80)
        for other in ["https://127.0.0.1:8443", "http://127.0.0.1:8080/prefix", "http://[::1]:8080"] {
            #expect(EventLoopSender.target(of: other) == nil, "\(other)")
        }
    }

    @Test("a reply without Content-Length, a chunked one, or not HTTP at all is malformed, not waited for")
    func malformed() {
        for text in [
            "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n",
            "SSH-2.0-OpenSSH\r\n\r\n",
            "\r\n\r\n",
            "HTTP/1.1 200 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: x\r\n\r\n{}",
        ] {
            let replies = parse([Array(text.utf8)])
            #expect(replies.count == 1)
            if case .malformed = replies.first {} else { Issue.record("not malformed: \(text)") }
        }
    }

    @Test("header names match in any case, values are read without the spaces and tabs around them")
    func headerSpelling() {
        let text = "HTTP/1.1 429 Too Many Requests\r\nCONTENT-length:\t 2 \r\nX-Other: a:b\r\nno colon here\r\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\nTransfer-Encoding:  Identity\r\n\r\n{}"
        let replies = parse([Array(text.utf8)])
        guard replies.count == 1, case .reply(let status, let retryAfter, let body) = replies[0] else {
            Issue.record("not one reply: \(replies)")
            return
        }
        #expect(status == 429 && retryAfter)
        #expect(String(buffer: body) == "{}")
    }

    @Test("a reply that is not HTTP/1.x with a decimal status, or whose Content-Length is not a decimal, is malformed")
    func badNumbers() {
        for text in [
            "HTTP/1.1 20x Created\r\nContent-Length: 0\r\n\r\n",
            "HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
        ] {
            let replies = parse([Array(text.utf8)])
            #expect(replies.count == 1, "\(text)")
            if case .malformed = replies.first {} else { Issue.record("not malformed: \(text)") }
        }
    }

    @Test("a head that never ends is malformed once it passes 64 KiB, and waited for before")
    func endlessHead() {
        let start = Array("HTTP/1.1 200 OK\r\nX-Long: ".utf8)
        #expect(parse([start + Array(repeating: UInt8(ascii: "a"), count: 1_000)]).isEmpty)
        let replies = parse([start + Array(repeating: UInt8(ascii: "a"), count: 70_000)])
        if case .malformed = replies.first {} else { Issue.record("not malformed: \(replies.count) replies") }
    }
}
