import ConveyorAgent
import ConveyorCore
import ConveyorRedis
import Testing

@Suite("The Completer's linger setting")
struct CompleterLingerSettingTests {
    @Test("CONVEYOR_COMPLETER_LINGER takes 0 to 100ms (four batches of room at 80,000 outcomes a second), and a longer one is refused with its range")
    func lingerRange() throws {
        var configuration = AgentConfiguration(agentID: "a1", redis: try RedisConfiguration(url: "redis://127.0.0.1:6379"))
        #expect(configuration.completerLinger == .milliseconds(10))
        for accepted in [Duration.zero, .milliseconds(10), .milliseconds(100)] {
            configuration.completerLinger = accepted
            #expect(throws: Never.self) { try configuration.validate() }
        }
        configuration.completerLinger = .milliseconds(101)
        #expect {
            try configuration.validate()
        } throws: { error in
            (error as? ConfigurationError)?.description == "CONVEYOR_COMPLETER_LINGER: must be 0 to 100ms"
        }
    }
}
