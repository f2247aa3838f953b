import ConveyorCore
import Testing

@Suite("Linger: when a batching loop may take its next batch")
struct LingerTests {
    let takenAt = ContinuousClock.now
    let linger = Linger(duration: .milliseconds(5))

    @Test("after a batch that did not fill, the pause is what is left of the linger since that batch was taken")
    func pauseIsTheRestOfTheLinger() {
        #expect(linger.pause(afterBatchAt: takenAt, filled: false, now: takenAt) == .milliseconds(5))
        #expect(linger.pause(afterBatchAt: takenAt, filled: false, now: takenAt.advanced(by: .milliseconds(2))) == .milliseconds(3))
    }

    @Test("no pause once handling the batch took the whole linger")
    func noPauseOnceTheLingerHasPassed() {
        #expect(linger.pause(afterBatchAt: takenAt, filled: false, now: takenAt.advanced(by: .milliseconds(5))) == nil)
        #expect(linger.pause(afterBatchAt: takenAt, filled: false, now: takenAt.advanced(by: .milliseconds(40))) == nil)
    }

    @Test("no pause after a batch that filled: a backlog is taken at once")
    func noPauseBehindABacklog() {
        #expect(linger.pause(afterBatchAt: takenAt, filled: true, now: takenAt) == nil)
    }

    @Test("a linger of zero never pauses")
    func zeroLingerNeverPauses() {
        #expect(Linger(duration: .zero).pause(afterBatchAt: takenAt, filled: false, now: takenAt) == nil)
    }
}
