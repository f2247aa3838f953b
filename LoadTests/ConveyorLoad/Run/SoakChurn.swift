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

    /// Restarts the stack's agents, one every `plan.agentRestartEvery`, until cancelled; returns how many.
    static func restartAgents(of stack: LoadStack, plan: Plan, progress: Bool) async -> Int {
        var restarts = 0
        let slots = stack.agents.count
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: plan.agentRestartEvery)
                let slot = restarts % slots
                try await stack.restartAgent(slot: slot)
                restarts += 1
                if progress { FileHandle.standardOutput.write(Data("restarted agent \(slot + 1)\n".utf8)) }
            } catch {
                return restarts
            }
        }
        return restarts
    }
}
