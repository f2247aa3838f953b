import ConveyorCore
@testable import ConveyorRedis
import Testing

@Suite("RESP parsing")
struct RESPParseTests {
    /// One of every reply kind RESP2 has, nested as deep as Redis nests them (XREADGROUP: streams →
    /// entries → [id, fields]), with the odd cases: empty and null bulk strings, a null and an empty
    /// array, a nil element inside an array (a deleted entry), an error inside an array (as EXEC returns
    /// them), a binary value that is not UTF-8.
    static let wire = Array((
        "+OK\r\n" + "-ERR unknown command 'NOPE'\r\n" + ":-42\r\n" + "$5\r\nhello\r\n" + "$0\r\n\r\n" + "$-1\r\n" + "*-1\r\n" + "*0\r\n"
            + "*1\r\n*2\r\n$18\r\nconveyor:{q}:ready\r\n*3\r\n"
            + "*2\r\n$3\r\n1-0\r\n*4\r\n$2\r\nid\r\n$2\r\n42\r\n$6\r\nparams\r\n$2\r\n{}\r\n"
            + "*2\r\n$3\r\n2-0\r\n*-1\r\n"
            + "*2\r\n$3\r\n3-0\r\n*2\r\n$1\r\nb\r\n$4\r\n\0\r\n"
    ).utf8) + [0xFF] + Array((
        "\r\n"
            + "*3\r\n:1\r\n*3\r\n+QUEUED\r\n-EXECABORT Transaction discarded\r\n$-1\r\n*0\r\n"
    ).utf8)

    static let expected: [RedisReply] = [
        .status("OK"), .error("ERR unknown command 'NOPE'"), .integer(-42), .bulk(Array("hello".utf8)), .bulk([]), .null, .null,
        .array([]),
        .array([.array([
            .bulk(Array("conveyor:{q}:ready".utf8)),
            .array([
                .array([.bulk(Array("1-0".utf8)), .array([.bulk(Array("id".utf8)), .bulk(Array("42".utf8)), .bulk(Array("params".utf8)), .bulk(Array("{}".utf8))])]),
                .array([.bulk(Array("2-0".utf8)), .null]),
                .array([.bulk(Array("3-0".utf8)), .array([.bulk(Array("b".utf8)), .bulk([0, 13, 10, 0xFF])])]),
            ]),
        ])]),
        .array([.integer(1), .array([.status("QUEUED"), .error("EXECABORT Transaction discarded"), .null]), .array([])]),
    ]

    @Test("replies are built as hiredis' own objects converted them, every kind and nesting included")
    func matchesHiredisObjects() throws {
        #expect(try RESPCodec.parse(Self.wire) == Self.expected)
        #expect(try RESPCodec.parseWithHiredisObjects(Self.wire) == Self.expected)
    }

    @Test("a reply split anywhere across reads comes out whole", arguments: [1, 2, 3, 7, 16])
    func splitAcrossReads(chunk: Int) throws {
        #expect(try RESPCodec.parse(Self.wire, chunk: chunk) == Self.expected)
    }

    @Test("a half-read reply is not returned until its last byte arrives")
    func incompleteReply() throws {
        let nested = Array("*2\r\n*1\r\n:1\r\n$3\r\nabc\r\n".utf8)
        #expect(try RESPCodec.parse(Array(nested.dropLast(3))).isEmpty)
        #expect(try RESPCodec.parse(nested) == [.array([.array([.integer(1)]), .bulk(Array("abc".utf8))])])
    }

    @Test("bytes that are not RESP are refused, at the start or inside an array")
    func malformed() {
        #expect(throws: RedisError.self) { try RESPCodec.parse(Array("?what\r\n".utf8)) }
        #expect(throws: RedisError.self) { try RESPCodec.parse(Array("*x\r\n".utf8)) }
        #expect(throws: RedisError.self) { try RESPCodec.parse(Array("*3\r\n:1\r\n*1\r\n?x\r\n".utf8)) }
    }

    @Test("arrays nest eight deep, as hiredis allows; a ninth level is refused")
    func depth() throws {
        func nested(_ levels: Int) -> [UInt8] { Array((String(repeating: "*1\r\n", count: levels - 1) + "*0\r\n").utf8) }
        var expected = RedisReply.array([])
        for _ in 1..<8 { expected = .array([expected]) }
        #expect(try RESPCodec.parse(nested(8)) == [expected])
        #expect(try RESPCodec.parseWithHiredisObjects(nested(8)) == [expected])
        #expect(throws: RedisError.self) { try RESPCodec.parse(nested(9)) }
    }

    @Test("an array header claiming billions of elements reserves no more than a bounded amount")
    func hugeArrayHeader() throws {
        #expect(try RESPCodec.parse(Array("*2147483647\r\n:1\r\n".utf8)).isEmpty)
    }

    @Test("a reply left half-built by a broken connection is dropped when the builder is attached again")
    func reattachDropsHalfBuiltReply() throws {
        let builder = ReplyBuilder()
        #expect(try RESPCodec.parse(Array("*2\r\n:1\r\n".utf8), builder: builder).isEmpty)
        #expect(try RESPCodec.parse(Array(":7\r\n".utf8), builder: builder) == [.integer(7)])
    }

    @Test("a stream entry keeps its fields in written order; by name, a repeated one keeps its last value")
    func streamEntryFields() throws {
        let entries = try #require(RESPCodec.parse(Self.wire)[8].array?.first?.array?[1].array)
        let first = try StreamEntry(reply: entries[0])
        #expect(first.id == "1-0")
        #expect(first.fieldList == [StreamField("id", "42"), StreamField("params", "{}")])
        #expect(first.fields == ["id": "42", "params": "{}"])
        let deleted = try StreamEntry(reply: entries[1])
        #expect(deleted.fieldList == nil && deleted.fields == nil)
        let repeated = StreamEntry(id: "4-0", fieldList: [StreamField("a", "1"), StreamField("a", "2")])
        #expect(repeated.fields == ["a": "2"])
    }
}
