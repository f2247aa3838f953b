@testable import ConveyorPostgres
import Testing

@Suite("LockPatience: how partition changes ask for their locks")
struct LockPatienceTests {
    @Test("the standard schedule tries short waits first and ends with one as long as the single wait before it")
    func standardSchedule() {
        let waits = LockPatience.standard.waits
        #expect(waits.first == .milliseconds(5))
        #expect(waits.last == .milliseconds(200))
        #expect(zip(waits, waits.dropFirst()).allSatisfy { $0 <= $1 }, "waits never shorten")
        #expect(waits.filter { $0 == .milliseconds(200) }.count == 1, "the traffic pays one long wait per pass at most")
        #expect(LockPatience.standard.pause > waits.first!, "traffic held up by a short attempt drains before the next")
    }

    @Test("an attempt's lock_timeout is whole milliseconds and never zero, which would mean waiting forever")
    func settingNeverUnbounded() {
        #expect(LockPatience.setting(for: .milliseconds(5)) == "SET LOCAL lock_timeout = '5ms'")
        #expect(LockPatience.setting(for: .microseconds(300)) == "SET LOCAL lock_timeout = '1ms'")
        #expect(LockPatience.setting(for: .zero) == "SET LOCAL lock_timeout = '1ms'")
    }
}
