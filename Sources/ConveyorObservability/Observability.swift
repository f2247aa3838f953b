import Synchronization

/// The process-wide observability switch (`CONVEYOR_OBSERVABILITY_ENABLED`). Off, no metric is kept
/// (swift-metrics is bootstrapped with its no-op factory, `/metrics` answers 404) and per-task log
/// lines below warning are dropped; warnings and errors are always logged.
public enum Observability {
    private static let enabled = Atomic<Bool>(true)

    /// Call before anything bootstraps metrics (the CLI does it first thing).
    public static func configure(enabled value: Bool) {
        enabled.store(value, ordering: .relaxed)
    }

    public static var isEnabled: Bool { enabled.load(ordering: .relaxed) }
}
