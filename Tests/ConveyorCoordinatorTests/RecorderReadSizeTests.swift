@testable import ConveyorCoordinator
import Testing

@Suite("The Recorder's read size: about a batch of events per read, whatever each entry holds")
struct RecorderReadSizeTests {
    @Test("unknown entries are read one at a time; then the count follows the largest entry seen, forgetting by halves")
    func followsLargestEntry() {
        var size = RecorderReadSize(events: 5000)
        #expect(size.entries == 1, "an entry may hold an agent's whole batch: one per read until seen")
        size.observe(largestEntry: 1000)
        #expect(size.entries == 2, "the assumption is forgotten by halves (2,500)")
        size.observe(largestEntry: 1000)
        size.observe(largestEntry: 1000)
        #expect(size.entries == 5, "then the largest entry seen (1,000)")
        size.observe(largestEntry: 0)
        #expect(size.entries == 5, "an empty read teaches nothing")
        for _ in 0..<20 { size.observe(largestEntry: 1) }
        #expect(size.entries == 5000, "single-event entries (Lua's, older agents') read a whole batch of them")
        size.observe(largestEntry: 2000)
        #expect(size.entries == 2, "a larger entry shrinks the next read at once")
        #expect(RecorderReadSize(events: 0).entries == 1)
    }
}
