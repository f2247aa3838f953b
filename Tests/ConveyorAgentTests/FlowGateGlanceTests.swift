@testable import ConveyorAgent
import ConveyorCore
import ConveyorRedis
import Testing

@Suite("FlowGate's glance: what a read's own round trip tells its entries")
struct FlowGateGlanceTests {
    private let keys = RedisKeys(prefix: "p")

    private func delivery(_ id: Int64, queue: String) -> Delivery {
        Delivery(queue: queue, stream: keys.ready(queue), entryID: "\(id)-0", envelope: TaskEnvelope(
            id: TaskID(rawValue: id), type: "noop", params: "{}", correlationID: "c", attempt: 1, maxAttempts: 3, enqueuedAtMillis: 1))
    }

    /// A command's name and arguments, as sent.
    private static func words(_ command: RedisCommand) -> [String] {
        var words: [String] = []
        var start = 0
        for length in command.lengths {
            words.append(String(decoding: command.bytes[start..<(start + length)], as: UTF8.self))
            start += length
        }
        return words
    }

    @Test("asks each queue's cancelled-set size and pauses, in the queues' order, under their hash tags")
    func commands() {
        let commands = FlowGate.Glance.commands(["a", "b"], keys: keys)
        #expect(commands.map(\.name) == ["SCARD", "HKEYS", "SCARD", "HKEYS"])
        #expect(commands.map(Self.words) == [
            ["SCARD", keys.cancelled("a")], ["HKEYS", keys.paused("a")], ["SCARD", keys.cancelled("b")], ["HKEYS", keys.paused("b")],
        ])
    }

    @Test("with nothing marked cancelled in the entries' queues, the glance is the inspection: no entry cancelled, their queues' pauses")
    func nothingCancelledNeedsNoRoundTrip() throws {
        let glance = FlowGate.Glance(["a", "b"], replies: [.integer(0), .array([.bulk(Array("t1".utf8))]), .integer(3), .array([])][...])
        let inspection = try #require(glance.inspection(of: [delivery(1, queue: "a"), delivery(2, queue: "a")]))
        #expect(inspection.cancelled.isEmpty)
        #expect(inspection.paused == ["a": ["t1"]])
    }

    @Test("an entry of a queue with a cancellation marked, or of a queue not glanced at, needs the per-entry inspection")
    func cancellationsNeedTheRoundTrip() {
        let glance = FlowGate.Glance(["a", "b"], replies: [.integer(0), .array([]), .integer(3), .array([])][...])
        #expect(glance.inspection(of: [delivery(1, queue: "a"), delivery(2, queue: "b")]) == nil)
        #expect(glance.inspection(of: [delivery(3, queue: "c")]) == nil)
    }

    @Test("pauses of queues the read took nothing from are left out, as the per-entry inspection leaves them")
    func otherQueuesPausesLeftOut() throws {
        let glance = FlowGate.Glance(["a", "b"], replies: [.integer(0), .array([]), .integer(0), .array([.bulk(Array("*".utf8))])][...])
        #expect(try #require(glance.inspection(of: [delivery(1, queue: "a")])).paused.isEmpty)
    }

    @Test("an error or a missing reply counts as a cancellation marked: the round trip then asks again and reports the error")
    func unexpectedRepliesFallBack() {
        let errored = FlowGate.Glance(["a"], replies: [.error("WRONGTYPE"), .array([])][...])
        #expect(errored.inspection(of: [delivery(1, queue: "a")]) == nil)
        let cut = FlowGate.Glance(["a"], replies: [.integer(0)][...])
        #expect(cut.inspection(of: [delivery(1, queue: "a")]) == nil)
    }
}
