import CoreMetrics
import Synchronization

/// The handlers ``ConveyorMetricsFactory`` has made, by kind, label and dimensions.
///
/// swift-metrics asks the factory again on every `Counter(label:dimensions:)`, and swift-prometheus
/// then checks the name, the help text and every label before it finds the metric it already has. The
/// HTTP middleware makes three per request: on single POSTs that was about 3 % of the coordinator's
/// CPU (`perf`, `LoadTests/wrk-single.sh`). Here a repeat costs one hash lookup under a lock, without
/// allocating.
final class MetricHandlerCache: Sendable {
    enum Kind {
        case counter, floatingPointCounter, gauge, valueHistogram, durationHistogram
    }

    /// Holds the caller's dimensions as they are: hashing them pair by pair allocates nothing.
    private struct Key: Hashable {
        var kind: Kind
        var label: String
        var dimensions: [(String, String)]

        static func == (lhs: Key, rhs: Key) -> Bool {
            lhs.kind == rhs.kind && lhs.label == rhs.label && lhs.dimensions.count == rhs.dimensions.count
                && zip(lhs.dimensions, rhs.dimensions).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(kind)
            hasher.combine(label)
            for (name, value) in dimensions {
                hasher.combine(name)
                hasher.combine(value)
            }
        }
    }

    private let handlers = Mutex<[Key: any Sendable & AnyObject]>([:])

    /// The handler made before for this kind, label and dimensions, or the one `make` makes now (under
    /// the lock, so two callers never make the same metric twice).
    func handler<Handler: Sendable & AnyObject>(
        _ kind: Kind, label: String, dimensions: [(String, String)], make: () -> Handler
    ) -> Handler {
        let key = Key(kind: kind, label: label, dimensions: dimensions)
        return handlers.withLock { handlers in
            // One kind is always made as one type, so the cast only fails for a key never made.
            if let known = handlers[key] as? Handler { return known }
            let made = make()
            handlers[key] = made
            return made
        }
    }

    /// Forgets `handler` (a destroyed metric) under every key that holds it, and runs `unregister` under
    /// the same lock: a make racing with the destroy then either gets the handler before it is
    /// unregistered or makes a fresh one, never a cached handler that no longer reaches `/metrics`.
    func forget(_ handler: AnyObject, unregister: () -> Void) {
        handlers.withLock { handlers in
            handlers = handlers.filter { $0.value !== handler }
            unregister()
        }
    }
}
