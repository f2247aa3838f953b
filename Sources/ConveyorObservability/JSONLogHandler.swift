import ConveyorCore
import Foundation
import Logging
import Synchronization

/// A swift-log handler that writes one JSON object per line to stdout, ready for Loki:
/// `{"ts":"2026-11-23T10:04:05.123Z","level":"info","msg":"…","service":"coordinator","instance":"…",…}`
/// followed by the metadata. With `format: .text` it writes a readable line for a terminal instead.
public struct JSONLogHandler: LogHandler {
    public enum Format: String, Sendable {
        case json
        case text
    }

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String
    private let service: String
    private let instance: String
    private let format: Format
    private let loki: LokiShipper?

    public init(label: String, service: String, instance: String, format: Format, level: Logger.Level = .info, loki: LokiShipper? = nil) {
        self.loki = loki
        self.label = label
        self.service = service
        self.instance = instance
        self.format = format
        self.logLevel = level
    }

    /// The same handler (service, instance, format, level, metadata, Loki) under another logger label.
    public func relabelled(_ label: String) -> JSONLogHandler {
        var copy = JSONLogHandler(label: label, service: service, instance: instance, format: format, level: logLevel, loki: loki)
        copy.metadata = metadata
        return copy
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = self.metadata
        if let extra = event.metadata {
            merged.merge(extra) { _, new in new }
        }
        let json = format == .json || loki != nil ? jsonLine(event.level, event.message.description, merged) : ""
        StandardOutput.write(format == .json ? json : textLine(event.level, event.message.description, merged))
        loki?.enqueue(level: event.level, line: json)
    }

    private func jsonLine(_ level: Logger.Level, _ message: String, _ metadata: Logger.Metadata) -> String {
        var out = "{\"ts\":\"" + Self.timestamp() + "\",\"level\":\"" + level.rawValue + "\",\"msg\":"
        JSONValue.writeString(message, into: &out)
        out += ",\"service\":"
        JSONValue.writeString(service, into: &out)
        out += ",\"instance\":"
        JSONValue.writeString(instance, into: &out)
        out += ",\"logger\":"
        JSONValue.writeString(label, into: &out)
        for key in metadata.keys.sorted() {
            out += ","
            JSONValue.writeString(key, into: &out)
            out += ":"
            JSONValue.writeString(metadata[key]!.description, into: &out)
        }
        return out + "}\n"
    }

    private func textLine(_ level: Logger.Level, _ message: String, _ metadata: Logger.Metadata) -> String {
        var out = Self.timestamp() + " " + level.rawValue.uppercased() + " [" + service + "] " + message
        for key in metadata.keys.sorted() { out += " \(key)=\(metadata[key]!)" }
        return out + "\n"
    }

    /// RFC 3339 UTC with milliseconds.
    static func timestamp() -> String {
        UTCTime.format(millis: WallClock.nowMillis())
    }
}

/// Serialises writes to stdout so lines from concurrent tasks never interleave.
enum StandardOutput {
    private static let lock = Mutex(())

    static func write(_ line: String) {
        lock.withLock { _ in
            var line = line
            line.withUTF8 { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = Foundation.write(1, buffer.baseAddress! + offset, buffer.count - offset)
                    if written <= 0 { return }
                    offset += written
                }
            }
        }
    }
}

/// Sets up swift-log once per process.
public enum LoggingSetup {
    /// - Parameters:
    ///   - format: nil picks text when stdout is a terminal and JSON otherwise.
    private static let shipper = Mutex<LokiShipper?>(nil)

    /// The Loki shipper set up by ``bootstrap(service:instance:format:level:loki:)``, to run as a service.
    public static var lokiShipper: LokiShipper? { shipper.withLock { $0 } }

    /// - Parameter loki: also ship every line to Loki; run it as a service of the process.
    public static func bootstrap(service: String, instance: String, format: JSONLogHandler.Format?, level: Logger.Level, loki: LokiShipper? = nil) {
        shipper.withLock { $0 = loki }
        let chosen = format ?? (isatty(1) == 1 ? .text : .json)
        LoggingSystem.bootstrap { label in
            JSONLogHandler(label: label, service: service, instance: instance, format: chosen, level: level, loki: loki)
        }
    }
}

extension Logger {
    /// The same output and level under another label (`conveyor.<process>.<service>`), so every line
    /// says which service wrote it. A JSON handler is remade with the new label; another handler (a
    /// test's) is shared as it is.
    package func with(label: String) -> Logger {
        if let json = handler as? JSONLogHandler {
            return Logger(label: label) { json.relabelled($0) }
        }
        var copy = Logger(label: label)
        copy.logLevel = logLevel
        copy.handler = handler
        return copy
    }
}
