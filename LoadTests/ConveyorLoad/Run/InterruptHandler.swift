import Dispatch
import Foundation

/// Runs a clean-up on SIGINT or SIGTERM, then exits with 130: `conveyor-load run --embedded` must not
/// leave its Redis, PostgreSQL, coordinator and agents running when it is interrupted.
final class InterruptHandler {
    private let sources: [any DispatchSourceSignal]

    init(cleanUp: @escaping @Sendable () async -> Void) {
        sources = [SIGINT, SIGTERM].map { signalNumber in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                FileHandle.standardError.write(Data("conveyor-load: interrupted; stopping the stack…\n".utf8))
                Task {
                    await cleanUp()
                    exit(130)
                }
            }
            source.resume()
            return source
        }
    }

    func cancel() {
        for source in sources { source.cancel() }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}
