@testable import ConveyorCoordinator
import Testing

@Suite("Recorder linger: when the next read may start")
struct RecorderLingerUnitTests {
    let readAt = ContinuousClock.now
    let linger = RecorderLinger(duration: .milliseconds(5))

    @Test("after a read that did not fill its batch, the pause is what is left of the linger since that read returned")
    func pauseIsTheRestOfTheLinger() {
        #expect(linger.pause(afterReadAt: readAt, filled: false, now: readAt) == .milliseconds(5))
        #expect(linger.pause(afterReadAt: readAt, filled: false, now: readAt.advanced(by: .milliseconds(2))) == .milliseconds(3))
    }

    @Test("no pause once recording the batch took the whole linger")
    func noPauseOnceTheLingerHasPassed() {
        #expect(linger.pause(afterReadAt: readAt, filled: false, now: readAt.advanced(by: .milliseconds(5))) == nil)
        #expect(linger.pause(afterReadAt: readAt, filled: false, now: readAt.advanced(by: .milliseconds(40))) == nil)
    }

    @Test("no pause after a read that filled its batch: a backlog is read at once")
    func noPauseBehindABacklog() {
        #expect(linger.pause(afterReadAt: readAt, filled: true, now: readAt) == nil)
    }

    @Test("a linger of zero never pauses")
    func zeroLingerNeverPauses() {
        #expect(RecorderLinger(duration: .zero).pause(afterReadAt: readAt, filled: false, now: readAt) == nil)
    }
}
