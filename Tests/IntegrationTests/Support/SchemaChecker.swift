import ConveyorCore

/// Checks a JSON value against a schema of the OpenAPI document (the JSON Schema 2020-12 keywords the
/// document uses: type, properties, required, additionalProperties, items, enum, const, $ref, allOf,
/// anyOf, oneOf, minimum/maximum, min/maxItems, min/maxLength). Returns the problems, each with its path.
struct SchemaChecker {
    let document: JSONValue

    func problems(_ value: JSONValue, against schema: JSONValue, at path: String = "$") -> [String] {
        if let ref = schema["$ref"]?.stringValue {
            guard let target = resolve(ref) else { return ["\(path): unresolvable \(ref)"] }
            return problems(value, against: target, at: path)
        }
        var found: [String] = []
        if let types = schema["type"] {
            let names = types.arrayValue?.compactMap(\.stringValue) ?? [types.stringValue].compactMap { $0 }
            if !names.contains(where: { Self.matches(value, type: $0) }) {
                return ["\(path): expected \(names.joined(separator: " or ")), got \(value.serialized.prefix(80))"]
            }
        }
        if let options = schema["enum"]?.arrayValue, !options.contains(value) {
            found.append("\(path): \(value.serialized) is not one of \(JSONValue.array(options).serialized)")
        }
        if let constant = schema["const"], constant != value { found.append("\(path): \(value.serialized) is not \(constant.serialized)") }
        for part in schema["allOf"]?.arrayValue ?? [] { found += problems(value, against: part, at: path) }
        if let options = schema["anyOf"]?.arrayValue, !options.contains(where: { problems(value, against: $0, at: path).isEmpty }) {
            found.append("\(path): matches none of anyOf")
        }
        if let options = schema["oneOf"]?.arrayValue, options.filter({ problems(value, against: $0, at: path).isEmpty }).count != 1 {
            found.append("\(path): matches not exactly one of oneOf")
        }
        switch value {
        case .object(let members):
            for name in schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where members[name] == nil {
                found.append("\(path): missing required '\(name)'")
            }
            let properties: [String: JSONValue]
            if case .object(let declared)? = schema["properties"] { properties = declared } else { properties = [:] }
            for (name, member) in members {
                if let property = properties[name] {
                    found += problems(member, against: property, at: "\(path).\(name)")
                } else if let extra = schema["additionalProperties"] {
                    if extra == .bool(false) {
                        found.append("\(path): unexpected member '\(name)'")
                    } else if case .object = extra {
                        found += problems(member, against: extra, at: "\(path).\(name)")
                    }
                }
            }
        case .array(let elements):
            if let items = schema["items"] {
                for (index, element) in elements.enumerated() { found += problems(element, against: items, at: "\(path)[\(index)]") }
            }
            if let least = schema["minItems"]?.intValue, elements.count < least { found.append("\(path): fewer than \(least) items") }
            if let most = schema["maxItems"]?.intValue, elements.count > most { found.append("\(path): more than \(most) items") }
        case .integer, .double:
            let number: Double = if case .integer(let integer) = value { Double(integer) } else if case .double(let double) = value { double } else { 0 }
            if let least = schema["minimum"].flatMap(Self.number), number < least { found.append("\(path): below \(least)") }
            if let most = schema["maximum"].flatMap(Self.number), number > most { found.append("\(path): above \(most)") }
        case .string(let text):
            if let least = schema["minLength"]?.intValue, text.count < least { found.append("\(path): shorter than \(least)") }
            if let most = schema["maxLength"]?.intValue, text.count > most { found.append("\(path): longer than \(most)") }
        default:
            break
        }
        return found
    }

    /// `#/components/schemas/Name` and the like.
    func resolve(_ ref: String) -> JSONValue? {
        guard ref.hasPrefix("#/") else { return nil }
        var node: JSONValue? = document
        for part in ref.dropFirst(2).split(separator: "/") { node = node?[String(part).replacingOccurrences(of: "~1", with: "/")] }
        return node
    }

    static func matches(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object), ("integer", .integer): true
        case ("number", .integer), ("number", .double): true
        case ("integer", .double(let double)): double == double.rounded()
        default: false
        }
    }

    static func number(_ value: JSONValue) -> Double? {
        switch value {
        case .integer(let integer): Double(integer)
        case .double(let double): double
        default: nil
        }
    }
}
