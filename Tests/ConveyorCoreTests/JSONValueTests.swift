import ConveyorCore
import Testing

@Suite("JSONValue")
struct JSONValueTests {
    @Test("serialises compactly with sorted keys and parses back to the same value")
    func roundTrip() throws {
        let text = #"{"b":[1,2.5,true,null],"a":"x","c":{"z":-3}}"#
        let value = try JSONValue.parse(text)
        #expect(value.serialized == #"{"a":"x","b":[1,2.5,true,null],"c":{"z":-3}}"#)
        #expect(try JSONValue.parse(value.serialized) == value)
    }

    @Test("escapes quotes, backslashes and control characters")
    func escaping() throws {
        let value = JSONValue.string("a\"b\\c\nd\te\u{01}é")
        #expect(value.serialized == #""a\"b\\c\nd\te\u0001é""#)
        #expect(try JSONValue.parse(value.serialized) == value)
    }

    @Test("a NUL character is written as U+FFFD, since PostgreSQL cannot store it")
    func nulBecomesReplacementCharacter() {
        #expect(JSONValue.string("a\u{0}b").serialized == #""a\ufffdb""#)
        #expect(JSONValue.object(["k": .array([.string("\u{0}")])]).containsNUL)
        #expect(!JSONValue.object(["k": .string("fine")]).containsNUL)
    }

    @Test("rejects malformed text")
    func malformed() {
        #expect(throws: (any Error).self) { try JSONValue.parse("{nope") }
    }
}
