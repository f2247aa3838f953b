import AsyncHTTPClient
import ConveyorCore
import ConveyorMetricNames
import Foundation
import Logging
import Metrics
import NIOCore
import ServiceLifecycle
import Synchronization

/// Pushes log lines straight to Loki (`CONVEYOR_LOKI_URL`), besides writing them to stdout.
///
/// Never on the hot path: the log handler only appends the line to a bounded buffer (one lock, no I/O).
/// Every second, or sooner when a batch is full, this service sends what piled up in one gzip-compressed
/// push, one stream per level. Labels are `service` and `level` only, so Loki keeps few streams; the
/// correlation id and the task id stay in the JSON line. When Loki is away, or the buffer is full, lines
/// are dropped and counted (`conveyor_log_lines_dropped_total`) rather than held without bound.
public final class LokiShipper: Service, Sendable {
    struct Line: Sendable {
        var nanos: Int64
        var level: String
        var text: String
    }

    private struct State {
        var lines: [Line] = []
        var dropped = 0
    }

    public let pushURL: String
    private let service: String
    private let capacity: Int
    private let batchSize: Int
    private let interval: Duration
    /// How long one push may take; the HTTP client keeps retrying a refused connection until then.
    private let pushTimeout: Duration
    private let state = Mutex(State())
    private let wake = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))

    /// - Parameter url: Loki's base URL (`http://loki:3100`); lines go to `/loki/api/v1/push`.
    public init(
        url: String, service: String, capacity: Int = 10_000, batchSize: Int = 1000, interval: Duration = .seconds(1),
        pushTimeout: Duration = .seconds(5)
    ) {
        self.pushTimeout = pushTimeout
        var base = url
        while base.hasSuffix("/") { base.removeLast() }
        self.pushURL = base + "/loki/api/v1/push"
        self.service = service
        self.capacity = capacity
        self.batchSize = batchSize
        self.interval = interval
    }

    /// Takes a line to ship; never blocks, never waits for Loki.
    func enqueue(level: Logger.Level, line: String) {
        let nanos = Int64(Date().timeIntervalSince1970 * 1_000_000_000)
        let full = state.withLock { state -> Bool? in
            guard state.lines.count < capacity else {
                state.dropped += 1
                return nil
            }
            state.lines.append(Line(nanos: nanos, level: level.rawValue, text: line))
            return state.lines.count >= batchSize
        }
        if full == true { wake.continuation.yield() }
    }

    /// Lines dropped so far (Loki away, or the buffer full).
    public var droppedLines: Int { state.withLock { $0.dropped } }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    // A full batch wakes the loop early.
                    for await _ in self.wake.stream { await self.flush() }
                }
                while !Task.isShuttingDownGracefully && !Task.isCancelled {
                    try? await Task.sleep(for: self.interval)
                    await self.flush()
                }
                self.wake.continuation.finish()
                await group.waitForAll()
            }
        } onGracefulShutdown: {
            self.wake.continuation.finish()
        }
        await flush()  // what the other services logged while stopping
    }

    /// Sends everything buffered, in batches; drops and counts a batch Loki does not take.
    func flush() async {
        while true {
            let batch = state.withLock { state -> [Line] in
                let taken = Array(state.lines.prefix(batchSize))
                state.lines.removeFirst(taken.count)
                return taken
            }
            guard !batch.isEmpty else { return }
            if !(await push(batch)) {
                state.withLock { $0.dropped += batch.count }
                Counter(label: MetricsCatalog.logLinesDropped.name).increment(by: batch.count)
                return  // Loki is away: try again at the next interval with what comes then
            }
        }
    }

    private func push(_ batch: [Line]) async -> Bool {
        var body = "{\"streams\":["
        var firstStream = true
        for (level, lines) in Dictionary(grouping: batch, by: \.level).sorted(by: { $0.key < $1.key }) {
            if !firstStream { body += "," }
            firstStream = false
            body += "{\"stream\":{\"service\":"
            JSONValue.writeString(service, into: &body)
            body += ",\"level\":"
            JSONValue.writeString(level, into: &body)
            body += "},\"values\":["
            for (index, line) in lines.enumerated() {
                if index > 0 { body += "," }
                body += "[\"\(line.nanos)\","
                JSONValue.writeString(line.text.hasSuffix("\n") ? String(line.text.dropLast()) : line.text, into: &body)
                body += "]"
            }
            body += "]}"
        }
        body += "]}"
        guard let compressed = Gzip.compress(Array(body.utf8)) else { return false }
        var request = HTTPClientRequest(url: pushURL)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Content-Encoding", value: "gzip")
        request.body = .bytes(ByteBuffer(bytes: compressed))
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .milliseconds(pushTimeout.milliseconds))
            _ = try? await response.body.collect(upTo: 1 << 16)
            return (200..<300).contains(response.status.code)
        } catch {
            return false
        }
    }
}
