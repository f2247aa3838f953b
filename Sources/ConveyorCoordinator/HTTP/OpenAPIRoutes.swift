import ConveyorCore
import Hummingbird
import Yams

/// `GET /openapi.json`: the contract of ``OpenAPIDocument``, converted once from its YAML.
public struct OpenAPIRoutes: Sendable {
    func register(on router: Router<CoordinatorRequestContext>) {
        let json = Self.json
        router.get("openapi.json") { _, _ in JSONResponse.make(.ok, json, headers: [.cacheControl: "public, max-age=300"]) }
    }

    /// The document as compact JSON with sorted keys (the same bytes every time).
    public static let json: String = {
        do {
            return try jsonValue().serialized
        } catch {
            // The document is compiled in and a test parses it: this is a build that skipped the tests.
            fatalError("OpenAPIDocument.yaml does not parse: \(error)")
        }
    }()

    /// The YAML read by YAML 1.2's JSON schema: only plain scalars are typed (so a quoted "200" stays a
    /// string and nothing becomes a date), and mapping keys are always strings.
    public static func jsonValue() throws -> JSONValue {
        guard let node = try Yams.compose(yaml: OpenAPIDocument.yaml) else { return .null }
        return convert(node)
    }

    private static func convert(_ node: Node) -> JSONValue {
        switch node {
        case .scalar(let scalar):
            guard scalar.style == .plain else { return .string(scalar.string) }
            switch scalar.string {
            case "null", "~", "": return .null
            case "true": return .bool(true)
            case "false": return .bool(false)
            default:
                if let integer = Int64(scalar.string) { return .integer(integer) }
                if let double = Double(scalar.string), scalar.string.contains(".") { return .double(double) }
                return .string(scalar.string)
            }
        case .mapping(let mapping):
            var members: [String: JSONValue] = [:]
            for (key, value) in mapping { members[key.string ?? ""] = convert(value) }
            return .object(members)
        case .sequence(let sequence):
            return .array(sequence.map(convert))
        case .alias:
            return .null
        }
    }
}
