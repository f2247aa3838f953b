@testable import ConveyorCoordinator
import HTTPTypes
import Testing

@Suite("HTTPFields.value(of:): a header's value as the subscript gives it")
struct HTTPFieldsValueTests {
    @Test("absent, once and repeated (Cookie joined with '; ', others with ', '), the same as the subscript")
    func sameAsSubscript() throws {
        let custom = try #require(HTTPField.Name("X-Custom"))
        var fields: HTTPFields = [.contentType: "application/json"]
        #expect(fields.value(of: .authorization) == nil)
        fields[.authorization] = "Bearer abc"
        #expect(fields.value(of: .authorization) == "Bearer abc")
        fields.append(HTTPField(name: custom, value: "a"))
        fields.append(HTTPField(name: .cookie, value: "x=1"))
        fields.append(HTTPField(name: custom, value: "b"))
        fields.append(HTTPField(name: .cookie, value: "y=2"))
        #expect(fields.value(of: custom) == "a, b")
        #expect(fields.value(of: .cookie) == "x=1; y=2")
        for name in [HTTPField.Name.contentType, .authorization, custom, .cookie, .idempotencyKey] {
            #expect(fields.value(of: name) == fields[name])
        }
    }
}
