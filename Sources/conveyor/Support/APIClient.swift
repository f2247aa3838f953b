import AsyncHTTPClient
import ConveyorCore
import Foundation
import NIOCore
import NIOHTTP1

/// A small client of the coordinator's HTTP API, for `conveyor tasks` and the demo load.
struct APIClient: Sendable {
    let baseURL: String
    let token: String?
    let http: HTTPClient

    struct Reply: Sendable {
        var status: Int
        var body: String
        var headers: [(String, String)]
    }

    func post(_ path: String, json: String, headers extra: [(String, String)] = []) async throws -> Reply {
        try await send(.POST, path, body: json, headers: extra)
    }

    func get(_ path: String) async throws -> Reply {
        try await send(.GET, path, body: nil, headers: [])
    }

    private func send(_ method: HTTPMethod, _ path: String, body: String?, headers extra: [(String, String)]) async throws -> Reply {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in extra { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await http.execute(request, timeout: .seconds(30))
        let buffer = try await response.body.collect(upTo: 16 << 20)
        return Reply(status: Int(response.status.code), body: String(buffer: buffer), headers: response.headers.map { ($0.name, $0.value) })
    }
}
