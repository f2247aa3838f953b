import ConveyorCore
import Hummingbird

/// A JSON response from text already serialised by hand (the API's bodies are small and fixed in shape;
/// building them directly avoids a Codable round trip per request).
enum JSONResponse {
    static func make(_ status: HTTPResponse.Status, _ json: String, headers extra: HTTPFields = [:]) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        headers.append(contentsOf: extra)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: json)))
    }

    /// A JSON string literal for `value`, or `null`.
    static func string(_ value: String?) -> String {
        guard let value else { return "null" }
        var out = ""
        JSONValue.writeString(value, into: &out)
        return out
    }
}
