import ConveyorCore
import Testing

@Suite("Promise: one answer for every waiter")
struct PromiseTests {
    struct Refused: Error, Equatable {}

    @Test("a waiter that comes after the answer gets it at once")
    func answerBeforeWaiting() async throws {
        let promise = Promise<Int>()
        promise.succeed(7)
        #expect(try await promise.value == 7)
        #expect(promise.isFulfilled && promise.isSucceeded)
    }

    @Test("every waiter, one or many, gets the one answer; later answers are ignored")
    func manyWaiters() async throws {
        for waiters in [1, 2, 5] {
            let promise = Promise<String>()
            try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<waiters { group.addTask { try await promise.value } }
                // Each waiter either parks before the answer or finds it done: both paths must answer.
                for _ in 0..<10 { await Task.yield() }
                promise.succeed("first")
                promise.succeed("second")
                var answers: [String] = []
                for try await answer in group { answers.append(answer) }
                #expect(answers == Array(repeating: "first", count: waiters))
            }
            #expect(try await promise.value == "first")
        }
    }

    @Test("a failure reaches every waiter")
    func failureReachesWaiters() async {
        let promise = Promise<Int>()
        let first = Task { try await promise.value }
        let second = Task { try await promise.value }
        await Task.yield()
        promise.fail(Refused())
        await #expect(throws: Refused.self) { try await first.value }
        await #expect(throws: Refused.self) { try await second.value }
        #expect(promise.isFulfilled && !promise.isSucceeded)
    }
}
