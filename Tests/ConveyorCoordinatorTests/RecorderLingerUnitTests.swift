@testable import ConveyorCoordinator
import ConveyorCore
import ConveyorPostgres
import ConveyorRedis
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

    @Test("CONVEYOR_RECORDER_LINGER takes 0 to the Recorder's BLOCK (1s), and a longer one is refused with its range")
    func lingerRange() throws {
        var configuration = CoordinatorConfiguration(
            redis: try RedisConfiguration(url: "redis://127.0.0.1:6379"), postgres: try PostgresConfiguration(url: "postgres://127.0.0.1/conveyor"),
            instanceID: "test")
        configuration.authDisabled = true
        for accepted in [Duration.zero, .milliseconds(10), .seconds(1)] {
            configuration.recorderLinger = accepted
            #expect(throws: Never.self) { try configuration.validate() }
        }
        configuration.recorderLinger = .milliseconds(1001)
        #expect {
            try configuration.validate()
        } throws: { error in
            (error as? ConfigurationError)?.description == "CONVEYOR_RECORDER_LINGER: must be 0 to 1000ms"
        }
    }
}
