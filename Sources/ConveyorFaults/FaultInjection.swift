import ConveyorCore
import Foundation
import Synchronization

/// A place in the code where a crash is hardest to survive, named so a test can crash exactly there.
public enum FaultPoint: String, Sendable, CaseIterable {
    /// Coordinator: tasks are committed in PostgreSQL, not yet XADDed (the Reconciler must find them).
    case crashAfterCommit = "crash-after-commit"
    /// Coordinator: tasks are committed and XADDed, the client has no 201 yet (it retries with its key).
    case crashAfterDispatch = "crash-after-dispatch"
    /// Coordinator: events are recorded in PostgreSQL, not yet acknowledged in Redis (they replay).
    case crashAfterRecord = "crash-after-record"
    /// Agent: attempts have finished, their outcome is not yet reported (they are reclaimed and rerun).
    case crashBeforeComplete = "crash-before-complete"
}

/// Test-only crashes at named points (`CONVEYOR_FAULT=crash-after-commit` or
/// `CONVEYOR_FAULT=crash-after-commit:0.05,crash-before-complete:0.01`, the number being the chance per
/// pass through the point). The process kills itself with SIGKILL, as the chaos test's own kills do, so
/// nothing gets to clean up.
///
/// Off unless configured; when off, a point costs one uncontended lock per batch.
public enum FaultInjection {
    private static let plan = Mutex<[FaultPoint: Double]>([:])

    /// Arms the points of a `CONVEYOR_FAULT` value; empty turns every fault off.
    public static func configure(_ specification: String) throws(ConfigurationError) {
        let parsed = try parse(specification)
        plan.withLock { $0 = parsed }
    }

    /// The points and chances a `CONVEYOR_FAULT` value names.
    public static func parse(_ specification: String) throws(ConfigurationError) -> [FaultPoint: Double] {
        var parsed: [FaultPoint: Double] = [:]
        for item in specification.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            let parts = item.split(separator: ":", maxSplits: 1).map(String.init)
            guard let point = FaultPoint(rawValue: parts[0]) else {
                let known = FaultPoint.allCases.map(\.rawValue).joined(separator: ", ")
                throw ConfigurationError(key: "CONVEYOR_FAULT", "unknown fault point '\(parts[0])' (known: \(known))")
            }
            var chance = 1.0
            if parts.count == 2 {
                guard let value = Double(parts[1]), value > 0, value <= 1 else {
                    throw ConfigurationError(key: "CONVEYOR_FAULT", "chance of '\(parts[0])' must be a number in (0, 1]")
                }
                chance = value
            }
            parsed[point] = chance
        }
        return parsed
    }

    /// Crashes the process here if this point is armed (and its chance comes up).
    public static func point(_ point: FaultPoint) {
        guard let chance = plan.withLock({ $0[point] }) else { return }
        if chance >= 1 || Double.random(in: 0..<1) < chance {
            kill(getpid(), SIGKILL)
        }
    }
}
