import ConveyorCore
import Synchronization

/// Which tasks get their per-task info lines (`CONVEYOR_TASK_LOG_SAMPLE`, a fraction from 0 to 1).
///
/// The choice is a function of the task id, so every process picks the same tasks: a sampled task can
/// be followed from the coordinator to the agent and back. Warnings and errors are never sampled.
public enum TaskLogSampling {
    /// In thousandths: 1000 logs every task.
    private static let perMille = Atomic<Int>(1000)

    public static func configure(fraction: Double) {
        perMille.store(Int((min(max(fraction, 0), 1) * 1000).rounded()), ordering: .relaxed)
    }

    /// Whether `id`'s per-task info lines are written.
    public static func includes(_ id: TaskID) -> Bool {
        guard Observability.isEnabled else { return false }
        let rate = perMille.load(ordering: .relaxed)
        if rate >= 1000 { return true }
        if rate <= 0 { return false }
        // A multiplicative hash spreads consecutive ids (blocks of 1,000) evenly over the thousandths.
        let mixed = UInt64(bitPattern: id.rawValue) &* 0x9E37_79B9_7F4A_7C15
        return Int((mixed >> 32) % 1000) < rate
    }
}
