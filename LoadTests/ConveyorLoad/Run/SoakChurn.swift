import ConveyorCore
import Foundation

/// What a soak does besides submitting: the quieter events of a long-running broker. Cancels ride on
/// the submissions (``LoadPlan/cancelEvery``); agent restarts run here, one slot after another.
enum SoakChurn {
    struct Plan: Sendable {
        /// Every this-many-th accepted task is cancelled right after it is accepted.
        var cancelEvery: Int
        /// An agent is restarted this often, round robin over the slots.
        var agentRestartEvery: Duration
    }

    /// Restarts the stack's agents, one every `plan.agentRestartEvery`, until cancelled; returns when each
    /// restart began and ended (wall clock, milliseconds), for the report to set slow seconds against.
    static func restartAgents(of stack: LoadStack, plan: Plan, progress: Bool) async -> [ClosedRange<Int64>] {
        var restarts: [ClosedRange<Int64>] = []
        let slots = stack.agents.count
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: plan.agentRestartEvery)
                let slot = restarts.count % slots
                let began = WallClock.nowMillis()
                try await stack.restartAgent(slot: slot)
                restarts.append(began...max(began, WallClock.nowMillis()))
                if progress { FileHandle.standardOutput.write(Data("restarted agent \(slot + 1)\n".utf8)) }
            } catch {
                return restarts
            }
        }
        return restarts
    }
}
