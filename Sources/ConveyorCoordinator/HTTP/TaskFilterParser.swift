import ConveyorCore
import ConveyorPostgres
import Hummingbird

/// Reads a ``TaskFilter`` by the same names from a search's query string (`GET /v1/tasks?status=failed`)
/// and from a bulk action's JSON body (`{"status": ["failed"]}`). A name it does not know is a 400, so a
/// misspelt filter never widens a search or a bulk action to every task.
enum TaskFilterParser {
    /// The filter names, as documented in the API reference and the OpenAPI document.
    static let filterNames = [
        "status", "type", "queue", "tag", "correlation_id", "idempotency_key",
        "created_after", "created_before", "finished_after", "finished_before", "error",
    ]
    static let maximumErrorTextLength = 200
    static let maximumTags = 8

    /// The query string's name/value pairs (a repeated name gives several).
    static func pairs(query request: Request) -> [(name: String, value: String)] {
        request.uri.queryParameters.map { (String($0.key), String($0.value)) }
    }

    /// A JSON object's members as name/value pairs: a string, a number, or an array of them.
    static func pairs(json: JSONValue) throws(APIError) -> [(name: String, value: String)] {
        guard case .object(let members) = json else {
            throw .badRequest("the body must be a JSON object of filters", code: "invalid_filter")
        }
        var pairs: [(name: String, value: String)] = []
        for (name, value) in members.sorted(by: { $0.key < $1.key }) {
            let elements = value.arrayValue ?? [value]
            for element in elements {
                switch element {
                case .string(let text): pairs.append((name, text))
                case .integer(let number): pairs.append((name, String(number)))
                default: throw .badRequest("\(name): must be a string, a number or an array of them", code: "invalid_filter")
                }
            }
        }
        return pairs
    }

    /// The filter in `pairs`; names in `extra` (such as `limit`) are left to the caller.
    static func filter(_ pairs: [(name: String, value: String)], extra: Set<String>) throws(APIError) -> TaskFilter {
        var filter = TaskFilter()
        var seen: Set<String> = []
        for (name, value) in pairs {
            // `?a=1&&b=2` gives an empty pair: nothing to filter on.
            if name.isEmpty && value.isEmpty { continue }
            if extra.contains(name) { continue }
            if name != "status" && name != "tag" {
                guard seen.insert(name).inserted else { throw .badRequest("\(name): given more than once", code: "invalid_filter") }
            }
            switch name {
            case "status":
                for word in value.split(separator: ",", omittingEmptySubsequences: false) {
                    guard let status = TaskStatus(rawValue: String(word).trimmingCharacters(in: .whitespaces)) else {
                        throw .badRequest(
                            "status: unknown status '\(word)' (one of \(TaskStatus.allCases.map(\.rawValue).joined(separator: ", ")))",
                            code: "invalid_filter")
                    }
                    filter.statuses.insert(status)
                }
            case "type": filter.type = try nonEmpty(value, name)
            case "queue": filter.queue = try nonEmpty(value, name)
            case "tag":
                guard let colon = value.firstIndex(of: ":"), colon != value.startIndex else {
                    throw .badRequest("tag: must be key:value, got '\(value)'", code: "invalid_filter")
                }
                filter.tags.append(TaskTag(key: String(value[..<colon]), value: String(value[value.index(after: colon)...])))
                guard filter.tags.count <= maximumTags else { throw .badRequest("tag: at most \(maximumTags) tags", code: "invalid_filter") }
            case "correlation_id": filter.correlationID = try nonEmpty(value, name)
            case "idempotency_key": filter.idempotencyKey = try nonEmpty(value, name)
            case "created_after": filter.createdAfter = try time(value, name)
            case "created_before": filter.createdBefore = try time(value, name)
            case "finished_after": filter.finishedAfter = try time(value, name)
            case "finished_before": filter.finishedBefore = try time(value, name)
            case "error":
                let text = try nonEmpty(value, name)
                guard text.count <= maximumErrorTextLength else {
                    throw .badRequest("error: at most \(maximumErrorTextLength) characters", code: "invalid_filter")
                }
                filter.errorContains = text
            default:
                let known = (filterNames + extra.sorted()).joined(separator: ", ")
                throw .badRequest("unknown filter '\(name)' (known: \(known))", code: "invalid_filter")
            }
        }
        return filter
    }

    /// The `cursor` of a page: a task id.
    static func cursor(_ text: String?) throws(APIError) -> TaskID? {
        guard let text else { return nil }
        guard let id = TaskID(text) else { throw .badRequest("cursor: must be the next_cursor of a previous page", code: "invalid_field") }
        return id
    }

    private static func nonEmpty(_ value: String, _ name: String) throws(APIError) -> String {
        guard !value.isEmpty, !value.utf8.contains(0) else { throw .badRequest("\(name): must not be empty", code: "invalid_filter") }
        return value
    }

    private static func time(_ value: String, _ name: String) throws(APIError) -> Int64 {
        guard let millis = RFC3339.parseMillis(value) else {
            throw .badRequest("\(name): must be an RFC 3339 time such as \"2026-12-01T09:30:00Z\"", code: "invalid_filter")
        }
        return millis
    }
}
