import ConveyorCore
import ConveyorFaults
import Testing

/// Only ever parses: arming a point here would SIGKILL the whole test process the next time any test's
/// Submitter passed it.
@Suite("Fault injection")
struct FaultInjectionTests {
    @Test("CONVEYOR_FAULT names points with an optional chance per pass")
    func parsing() throws {
        let plan = try FaultInjection.parse("crash-after-commit, crash-before-complete:0.05")
        #expect(plan == [.crashAfterCommit: 1, .crashBeforeComplete: 0.05])
        #expect(try FaultInjection.parse("").isEmpty)
    }

    @Test("an unknown point or a chance outside (0, 1] is a configuration error")
    func badValues() {
        #expect(throws: ConfigurationError.self) { try FaultInjection.parse("crash-somewhere") }
        #expect(throws: ConfigurationError.self) { try FaultInjection.parse("crash-after-commit:2") }
        #expect(throws: ConfigurationError.self) { try FaultInjection.parse("crash-after-commit:0") }
        #expect(throws: ConfigurationError.self) { try FaultInjection.parse("crash-after-commit:often") }
    }

    @Test("a point that is not armed does nothing")
    func unarmedPointIsHarmless() {
        for point in FaultPoint.allCases { FaultInjection.point(point) }
    }
}
