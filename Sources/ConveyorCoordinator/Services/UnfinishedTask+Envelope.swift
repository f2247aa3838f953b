import ConveyorCore
import ConveyorPostgres

extension UnfinishedTask {
    /// The stream entry of the task's next attempt (the Reconciler's re-dispatch, a workflow node's dispatch).
    var envelope: TaskEnvelope {
        let attempt = nextAttempt
        return TaskEnvelope(
            id: id, type: type, params: params, correlationID: correlationID,
            attempt: attempt, maxAttempts: max(maxAttempts, attempt), enqueuedAtMillis: createdAtMillis,
            hasCallback: hasCallback, priority: priority, limitKey: limitKey, dependencies: dependencies)
    }
}
