import ConveyorCore

/// `noop`: does nothing and succeeds. The unit of the throughput benchmarks.
public struct NoopHandler: TaskHandler {
    public init() {}
    public var returnsWithoutSuspending: Bool { true }
    public func handle(_ task: TaskContext) async throws -> JSONValue? { nil }
}

/// `sleep`: waits `{"ms": n}` milliseconds (0–3,600,000) without holding a thread, then succeeds.
public struct SleepHandler: TaskHandler {
    public init() {}

    public func handle(_ task: TaskContext) async throws -> JSONValue? {
        let ms = task.params["ms"]?.intValue ?? 0
        guard (0...3_600_000).contains(ms) else {
            throw TaskFailure.permanent("params.ms must be an integer from 0 to 3600000")
        }
        try await Task.sleep(for: .milliseconds(ms))
        return nil
    }
}

/// `echo`: succeeds with its params as the result.
public struct EchoHandler: TaskHandler {
    public init() {}
    public var returnsWithoutSuspending: Bool { true }
    public func handle(_ task: TaskContext) async throws -> JSONValue? { task.params }
}

/// `fail`: fails its first `{"times": n}` attempts (default 1), then succeeds. For exercising retries.
public struct FailHandler: TaskHandler {
    public init() {}
    public var returnsWithoutSuspending: Bool { true }

    public func handle(_ task: TaskContext) async throws -> JSONValue? {
        let times = task.params["times"]?.intValue ?? 1
        if task.attempt <= times {
            throw TaskFailure("failing attempt \(task.attempt) of the first \(times) on purpose")
        }
        return .object(["attempt": .integer(Int64(task.attempt))])
    }
}

/// `steps`: works through `{"steps": n}` steps (1–1,000, default 5) of `{"ms": m}` milliseconds each
/// (0–60,000, default 200), reporting progress after each. For trying out progress, the history and
/// the live stream, and for the chaos run.
public struct StepsHandler: TaskHandler {
    public init() {}

    public func handle(_ task: TaskContext) async throws -> JSONValue? {
        let steps = task.params["steps"]?.intValue ?? 5
        let ms = task.params["ms"]?.intValue ?? 200
        guard (1...1000).contains(steps), (0...60_000).contains(ms) else {
            throw TaskFailure.permanent("params.steps must be 1–1000 and params.ms 0–60000")
        }
        let total = Int(steps)
        try task.reportProgress(fraction: 0, step: 0, totalSteps: total, message: "starting")
        for step in 1...total {
            try await Task.sleep(for: .milliseconds(ms))
            try task.reportProgress(fraction: Double(step) / Double(total), step: step, totalSteps: total, message: "step \(step) of \(total)")
        }
        return .object(["steps": .integer(Int64(total))])
    }
}
