@testable import ConveyorAgent
import ConveyorCore
import Testing

@Suite("A command's progress lines")
struct CommandProgressChannelTests {
    @Test("a JSON line is a report; a blank line is nothing; anything else is refused with the reason")
    func lines() {
        func parse(_ text: String) -> CommandProgressChannel.Line? { CommandProgressChannel.parse(ArraySlice(text.utf8)) }
        guard case .report(let progress)? = parse(#"{"fraction": 0.5, "message": "halfway"}"#) else {
            Issue.record("not a report")
            return
        }
        #expect(progress.fraction == 0.5 && progress.message == "halfway")
        #expect(parse("   ") == nil)
        guard case .refused(let notJSON)? = parse("50%") else { Issue.record("accepted"); return }
        #expect(notJSON.hasPrefix("not JSON"))
        guard case .refused(let outOfRange)? = parse(#"{"fraction": 3}"#) else { Issue.record("accepted"); return }
        #expect(outOfRange.contains("fraction"))
    }
}
