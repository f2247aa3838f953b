import CoreMetrics
import Synchronization

/// The handlers ``ConveyorMetricsFactory`` has made, by kind, label and dimensions.
///
/// swift-metrics asks the factory again on every `Counter(label:dimensions:)`, and swift-prometheus
/// then checks the name, the help text and every label before it finds the metric it already has. The
/// HTTP middleware makes three per request: on single POSTs that was about 3 % of the coordinator's
/// CPU (`perf`, `LoadTests/wrk-single.sh`). Here a repeat costs one hash lookup under a lock.
final class MetricHandlerCache: Sendable {
    enum Kind: UInt8 {
        case counter, floatingPointCounter, gauge, valueHistogram, durationHistogram
    }

    private struct Key: Hashable {
        var kind: Kind
        var label: String
        var dimensions: [String]

        init(_ kind: Kind, _ label: String, _ dimensions: [(String, String)]) {
            self.kind = kind
            self.label = label
            self.dimensions = dimensions.flatMap { [$0.0, $0.1] }
        }
    }

    private let handlers = Mutex<[Key: any Sendable & AnyObject]>([:])

    /// The handler made before for this kind, label and dimensions, or the one `make` makes now.
    func handler<Handler: Sendable & AnyObject>(
        _ kind: Kind, label: String, dimensions: [(String, String)], make: () -> Handler
    ) -> Handler {
        let key = Key(kind, label, dimensions)
        return handlers.withLock { handlers in
            if let known = handlers[key] as? Handler { return known }
            let made = make()
            handlers[key] = made
            return made
        }
    }

    /// Forgets `handler` (a destroyed metric), so that the next request for it makes a new one.
    func forget(_ handler: AnyObject) {
        handlers.withLock { handlers in
            for (key, known) in handlers where known === handler { handlers[key] = nil }
        }
    }
}
