@testable import ConveyorAgent
import ConveyorCore
import Testing

@Suite("ReadPlan: how an agent shares a read among priority streams")
struct ReadPlanTests {
    private func plan(queues: [String] = ["q"]) -> ReadPlan {
        ReadPlan(streams: queues.flatMap { queue in
            TaskPriority.allCases.reversed().map { ReadPlan.Stream(key: "\(queue):\($0.name)", queue: queue, priority: $0) }
        })
    }

    private func counts(_ asked: [(stream: ReadPlan.Stream, count: Int)]) -> [String: Int] {
        Dictionary(uniqueKeysWithValues: asked.map { ($0.stream.key, $0.count) })
    }

    @Test("a read never asks for more entries than there are free slots, whatever the mix of streams")
    func neverMoreThanFree() {
        var plan = plan(queues: ["a", "b", "c"])
        for free in [1, 2, 3, 5, 8, 9, 10, 64, 999] {
            for round in 0..<25 {
                let asked = plan.counts(free: free)
                #expect(asked.map(\.count).reduce(0, +) <= free)
                // Alternate which streams look busy.
                plan.record(asked: asked, got: Dictionary(uniqueKeysWithValues: asked.map { ($0.stream.key, round % 3 == 0 ? $0.count : 0) }))
            }
        }
    }

    @Test("with only normal priority busy, it gets nearly every slot and the idle streams a probe of one")
    func normalAloneGetsTheRead() {
        var plan = plan()
        let asked = counts(plan.counts(free: 100))
        #expect(asked["q:normal"] == 98)
        #expect(asked["q:high"] == 1)
        #expect(asked["q:low"] == 1)
    }

    @Test("between probe rounds, the stream with work gets every slot and idle streams are not read; a stream that gave something still is")
    func noProbesBetweenProbeRounds() {
        var plan = plan()
        let between = counts(plan.counts(free: 100, probing: false))
        #expect(between == ["q:normal": 100])
        #expect(plan.hasIdle())
        plan.record(asked: plan.counts(free: 100), got: ["q:normal": 100, "q:high": 1])
        let busyAndTrickling = counts(plan.counts(free: 100, probing: false))
        #expect(busyAndTrickling["q:high"] ?? 0 > 0 && busyAndTrickling["q:normal"] ?? 0 > 0 && busyAndTrickling["q:low"] == nil)
    }

    @Test("a stream that gave less than it was asked, alone with work, still gets the whole next read")
    func tricklingStreamKeepsTheRead() {
        var plan = plan()
        let first = plan.counts(free: 1000)
        plan.record(asked: first, got: ["q:normal": 300])
        let asked = counts(plan.counts(free: 1000))
        #expect(asked["q:normal"] == 998)
        #expect(!plan.allIdle())
        plan.record(asked: plan.counts(free: 10), got: [:])
        #expect(plan.allIdle(), "a round that found nothing anywhere: the agent waits on every stream")
    }

    @Test("when every priority has work, slots go 6 : 3 : 1, so low priority is never starved")
    func weightedShares() {
        var plan = plan()
        let all = plan.counts(free: 10)
        plan.record(asked: all, got: Dictionary(uniqueKeysWithValues: all.map { ($0.stream.key, $0.count) }))
        let asked = counts(plan.counts(free: 100))
        #expect(asked["q:high"] == 60)
        #expect(asked["q:normal"] == 30)
        #expect(asked["q:low"] == 10)
    }

    @Test("one free slot at a time still reaches low priority: a tenth of the turns")
    func singleSlotRotation() {
        var plan = plan()
        let all = plan.counts(free: 30)
        plan.record(asked: all, got: Dictionary(uniqueKeysWithValues: all.map { ($0.stream.key, $0.count) }))
        var turns: [String: Int] = [:]
        for _ in 0..<100 {
            let asked = plan.counts(free: 1)
            #expect(asked.count == 1)
            turns[asked[0].stream.key, default: 0] += 1
            // Each stream keeps returning what it was asked for: all stay busy.
            plan.record(asked: asked, got: [asked[0].stream.key: 1])
        }
        #expect(turns["q:high"] == 60)
        #expect(turns["q:normal"] == 30)
        #expect(turns["q:low"] == 10)
    }

    @Test("a drained stream is probed again, so work arriving there is found within a few reads even when slots are scarce")
    func drainedStreamsAreProbed() {
        var plan = plan()
        var probedHigh = false
        for _ in 0..<8 {
            let asked = plan.counts(free: 1)
            if asked.contains(where: { $0.stream.key == "q:high" }) { probedHigh = true }
            plan.record(asked: asked, got: Dictionary(uniqueKeysWithValues: asked.map { ($0.stream.key, $0.stream.key == "q:normal" ? $0.count : 0) }))
        }
        #expect(probedHigh)
    }

    @Test("a probe round always probes an idle stream, even when the busy streams take every slot and probe rounds come every tenth read")
    func probeRoundsFindIdleStreams() {
        // Two slots, every stream full of work: high and normal turn busy at once, low stays idle until
        // a probe finds it. (Before: a probe round every ten reads never met the every-fourth-round turn.)
        for free in [1, 2] {
            var plan = plan()
            var lowRead = 0
            for read in 1...40 {
                let asked = plan.counts(free: free, probing: read % 10 == 1)
                lowRead += asked.first { $0.stream.key == "q:low" }?.count ?? 0
                plan.record(asked: asked, got: Dictionary(uniqueKeysWithValues: asked.map { ($0.stream.key, $0.count) }))
            }
            #expect(lowRead >= 2, "free \(free): low priority read \(lowRead) times in 40 reads")
        }
    }

    @Test("streams of a paused queue get nothing")
    func excludedStreams() {
        var plan = plan(queues: ["a", "b"])
        let asked = plan.counts(free: 50, excluded: ["a:high", "a:normal", "a:low"])
        #expect(asked.allSatisfy { $0.stream.queue == "b" })
        #expect(asked.map(\.count).reduce(0, +) == 50)
    }
}
