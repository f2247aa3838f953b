import ConveyorCore
import ConveyorTesting
import Foundation
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

    @Test("a string literal written as bytes is the one written as text, for every kind of character")
    func bytesMatchText() {
        let alphabet: [Unicode.Scalar] = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\r", "\t", "\u{0}", "\u{01}", "\u{1F}", "\u{7F}", "é", "€", "😀"]
        var generator = SeededGenerator(seed: 17)
        var strings = ["", "plain", "a\"b\\c\nd\te\u{01}é", "\u{0}"] + alphabet.map { String(Character($0)) }
        for _ in 0..<2000 {
            var string = ""
            for _ in 0..<Int.random(in: 0...12, using: &generator) {
                string.unicodeScalars.append(alphabet[Int.random(in: 0..<alphabet.count, using: &generator)])
            }
            strings.append(string)
        }
        for string in strings {
            var text = ""
            JSONValue.writeString(string, into: &text)
            var bytes: [UInt8] = []
            JSONValue.writeString(string, into: &bytes)
            #expect(bytes == Array(text.utf8), "\(string.debugDescription)")
        }
    }

    @Test("a NUL character is written as U+FFFD, since PostgreSQL cannot store it")
    func nulBecomesReplacementCharacter() {
        #expect(JSONValue.string("a\u{0}b").serialized == #""a\ufffdb""#)
        #expect(JSONValue.object(["k": .array([.string("\u{0}")])]).containsNUL)
        #expect(!JSONValue.object(["k": .string("fine")]).containsNUL)
    }

    @Test("rejects malformed text", arguments: [
        "", " ", "{nope", "{\"a\":1,}", "[1,]", "[1 2]", "01", "-", "1.", "1e", ".5", "+1", "tru", "nul", "\"open",
        "\"tab\tinside\"", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "{\"a\" 1}", "{1:2}", "[] []", "1e999",
    ])
    func malformed(text: String) {
        #expect(throws: JSONParseError.self, "\(text)") { try JSONValue.parse(text) }
    }

    @Test("an error names the byte at which the text stopped being JSON")
    func errorOffset() {
        let error = #expect(throws: JSONParseError.self) { try JSONValue.parse("[1 2]") }
        #expect(error?.offset == 3 && error?.description == "not valid JSON at byte 3: expected ',' or ']' in an array")
    }

    @Test("numbers: integers within 64 bits stay exact, anything else is a double")
    func numbers() throws {
        #expect(try JSONValue.parse("9223372036854775807") == .integer(.max))
        #expect(try JSONValue.parse("-9223372036854775808") == .integer(.min))
        #expect(try JSONValue.parse("9223372036854775808") == .double(9_223_372_036_854_775_808))
        #expect(try JSONValue.parse("-0") == .integer(0))
        #expect(try JSONValue.parse("2.5e3") == .double(2500))
        #expect(try JSONValue.parse("1E-2") == .double(0.01))
        #expect(try JSONValue.parse("3.0").intValue == 3)
    }

    @Test("strings: every escape, surrogate pairs and raw multi-byte text")
    func strings() throws {
        #expect(try JSONValue.parse(#""\"\\\/\b\f\n\r\t""#) == .string("\"\\/\u{8}\u{c}\n\r\t"))
        #expect(try JSONValue.parse(#""\u00e9\u4e2d\ud83d\ude00""#) == .string("é中😀"))
        #expect(try JSONValue.parse(#""raw é中😀 and \u0041""#) == .string("raw é中😀 and A"))
    }

    @Test("agrees with Foundation's JSONSerialization on a corpus of documents")
    func agreesWithFoundation() throws {
        let corpus = [
            #"{}"#, #"[]"#, #"{"ms":5}"#, " \n\t{ \"a\" : [ 1 , 2 ] }\r\n", #"{"nested":{"deeper":{"list":[{"x":null},[true,false]]}}}"#,
            #"[-1,0,1,1.5,-2.25e-3,1e10,123456789012]"#, #"{"dup":1,"dup":2}"#, #""just a string""#, "null", "true",
            #"{"unicode":"\u00fcber","emoji":"😀","quote":"say \"hi\""}"#,
        ]
        for text in corpus {
            let ours = try JSONValue.parse(text)
            let theirs = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
            #expect(Self.equal(ours, theirs), "\(text)")
        }
    }

    @Test("nesting deeper than 512 levels is refused rather than exhausting the stack")
    func depthLimit() throws {
        let fine = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        #expect(try JSONValue.parse(fine) != .null)
        let tooDeep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParseError.self) { try JSONValue.parse(tooDeep) }
    }

    /// Our value against what JSONSerialization returns for the same text.
    private static func equal(_ value: JSONValue, _ object: Any) -> Bool {
        switch value {
        case .null: return object is NSNull
        case .bool(let bool): return (object as? Bool) == bool
        case .integer(let integer): return (object as? NSNumber)?.int64Value == integer
        case .double(let double): return (object as? NSNumber)?.doubleValue == double
        case .string(let string): return object as? String == string
        case .array(let elements):
            guard let others = object as? [Any], others.count == elements.count else { return false }
            return zip(elements, others).allSatisfy { equal($0, $1) }
        case .object(let members):
            guard let others = object as? [String: Any], others.count == members.count else { return false }
            return members.allSatisfy { key, member in others[key].map { equal(member, $0) } ?? false }
        }
    }
}
