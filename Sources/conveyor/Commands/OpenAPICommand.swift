import ArgumentParser
import ConveyorCoordinator
import Foundation

/// `conveyor openapi`: prints the coordinator's OpenAPI document (what `/openapi.json` serves), indented,
/// for `docs/openapi.json` and for clients' code generators.
struct OpenAPICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "openapi",
        abstract: "Print the coordinator's OpenAPI 3.1 document (the one GET /openapi.json serves).")

    func run() throws {
        let object = try JSONSerialization.jsonObject(with: Data(OpenAPIRoutes.json.utf8))
        let pretty = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        print(String(decoding: pretty, as: UTF8.self))
    }
}
