import ConveyorCore
import Testing

@Suite("Fault injection")
struct FaultInjectionTests {
    @Test("CONVEYOR_FAULT accepts named points with an optional chance, and nothing else")
    func parsing() throws {
        try FaultInjection.configure("crash-after-commit, crash-before-complete:0.05")
        try FaultInjection.configure("")
        #expect(throws: ConfigurationError.self) { try FaultInjection.configure("crash-somewhere") }
        #expect(throws: ConfigurationError.self) { try FaultInjection.configure("crash-after-commit:2") }
        #expect(throws: ConfigurationError.self) { try FaultInjection.configure("crash-after-commit:often") }
        try FaultInjection.configure("")
    }

    @Test("a point that is not armed does nothing")
    func unarmedPointIsHarmless() throws {
        try FaultInjection.configure("")
        for point in FaultPoint.allCases { FaultInjection.point(point) }
    }
}
