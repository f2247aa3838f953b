@testable import ConveyorCoordinator
import ConveyorCore
import ConveyorPostgres
import ConveyorRedis
import Testing

@Suite("The Recorder's linger setting")
struct RecorderLingerSettingTests {
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
