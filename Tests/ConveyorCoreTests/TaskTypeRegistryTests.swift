import ConveyorConfiguration
import ConveyorCore
import ConveyorTesting
import Testing

@Suite("Task-type registry (YAML)")
struct TaskTypeRegistryTests {
    @Test("reads every setting and fills in the defaults")
    func parsesSettings() throws {
        let registry = try TaskTypeRegistry(yaml: """
            types:
              resize_image:
                queue: images
                max_concurrent: 2
                timeout: 90s
                max_attempts: 5
                handler: command
                command: ["/usr/local/bin/resize", "--fast"]
                max_output_bytes: 4096
              ping:
                handler: noop
            """, source: "types.yaml")
        let resize = try #require(registry["resize_image"])
        #expect(resize.queue == "images")
        #expect(resize.maxConcurrent == 2)
        #expect(resize.timeout == .seconds(90))
        #expect(resize.maxAttempts == 5)
        #expect(resize.command == ["/usr/local/bin/resize", "--fast"])
        #expect(resize.maxOutputBytes == 4096)
        let ping = try #require(registry["ping"])
        #expect(ping.queue == "default")
        #expect(ping.maxConcurrent == TaskTypeDefinition.defaultMaxConcurrent)
        #expect(ping.maxAttempts == 3)
        #expect(registry.queues == ["default", "images"])
    }

    @Test("mistakes are reported with the file and the setting at fault",
          arguments: [
              ("types: [1, 2", "not valid YAML"),
              ("other: 1", "unknown key 'other'"),
              ("types:\n  t:\n    queue: q", "types.t.handler"),
              ("types:\n  t:\n    handler: noop\n    max_concurrent: 0", "types.t.max_concurrent"),
              ("types:\n  t:\n    handler: noop\n    timeout: soon", "types.t.timeout"),
              ("types:\n  t:\n    handler: command", "types.t.command"),
              ("types:\n  t:\n    handler: noop\n    colour: red", "types.t.colour"),
              ("types:\n  'bad name':\n    handler: noop", "type names"),
          ])
    func reportsMistakes(yaml: String, expected: String) {
        do {
            _ = try TaskTypeRegistry(yaml: yaml, source: "types.yaml")
            Issue.record("accepted invalid YAML: \(yaml)")
        } catch {
            #expect(error.description.contains("types.yaml"))
            #expect(error.description.contains(expected), "\(error.description)")
        }
    }
}

@Suite("Configuration values")
struct ConfigurationValueTests {
    @Test("durations parse as ms, s, m, h or bare seconds", arguments: [
        ("250ms", Duration.milliseconds(250)), ("30s", .seconds(30)), ("5m", .seconds(300)), ("1h", .seconds(3600)),
        ("2", .seconds(2)), ("0.5", .milliseconds(500)),
    ])
    func durations(text: String, expected: Duration) {
        #expect(Duration(configurationText: text) == expected)
    }

    @Test("nonsense durations are rejected, and so are absurdly long ones", arguments: ["", "soon", "-1s", "5 parsecs", "1e300s", "1e300", "inf", "nan"])
    func badDurations(text: String) {
        #expect(Duration(configurationText: text) == nil)
    }

    @Test("backoff with full jitter stays within [0, min(max, base·2ⁿ)]")
    func backoffBounds() {
        let backoff = Backoff(base: .milliseconds(100), maximum: .seconds(2))
        var generator = SeededGenerator(seed: 7)
        for attempt in 0..<12 {
            let ceiling = backoff.ceiling(attempt: attempt)
            #expect(ceiling == min(.seconds(2), .milliseconds(100 << attempt)))
            for _ in 0..<50 {
                let delay = backoff.delay(attempt: attempt, using: &generator)
                #expect(delay >= .zero && delay <= ceiling)
            }
        }
    }

    @Test("correlation ids from clients are kept when printable and short, else replaced")
    func correlationIDs() {
        #expect(CorrelationID.sanitize("abc-123") == "abc-123")
        #expect(CorrelationID.sanitize("has space") == nil)
        #expect(CorrelationID.sanitize("quote\"") == nil)
        #expect(CorrelationID.sanitize(String(repeating: "a", count: 129)) == nil)
        #expect(CorrelationID.make().count == 32)
    }

    struct Sequence64: RandomNumberGenerator {
        var values: [UInt64]
        mutating func next() -> UInt64 { values.removeFirst() }
    }

    @Test("a fresh correlation id is its 128 random bits as 32 lowercase hex digits, zero-padded")
    func correlationIDFormat() {
        var generator = Sequence64(values: [0x0123_4567_89AB_CDEF, 0xFEDC_BA98_7654_3210])
        #expect(CorrelationID.make(using: &generator) == "0123456789abcdeffedcba9876543210")
        generator = Sequence64(values: [1, 0xA0])
        #expect(CorrelationID.make(using: &generator) == "000000000000000100000000000000a0")
    }

    @Test("a request's correlation id is its time in ms (12 hex digits) then 80 random bits, so ids sort by time")
    func timeOrderedCorrelationIDs() {
        var generator = Sequence64(values: [0xABCD_0000_0000_0000, 0xFEDC_BA98_7654_3210])
        #expect(CorrelationID.timeOrdered(atMillis: 1_764_857_246_123, using: &generator) == "019ae9b071ababcdfedcba9876543210")
        var earlier: String?
        for millis in stride(from: Int64(1_000), through: 1_764_857_246_123, by: 97_310_021_117) {
            let id = CorrelationID.timeOrdered(atMillis: millis)
            #expect(id.count == 32 && id.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
            if let earlier { #expect(earlier < id, "\(earlier) then \(id)") }
            earlier = id
        }
        #expect(CorrelationID.timeOrdered(atMillis: 5) != CorrelationID.timeOrdered(atMillis: 5))
    }

    @Test("ids made in the same millisecond never repeat, from one thread or many")
    func timeOrderedIDsAreUniqueWithinAMillisecond() async {
        var seen = Set<String>()
        for _ in 0..<100_000 { seen.insert(CorrelationID.timeOrdered(atMillis: 7)) }
        #expect(seen.count == 100_000)
        let concurrent = await withTaskGroup(of: [String].self) { group in
            for _ in 0..<4 { group.addTask { (0..<10_000).map { _ in CorrelationID.timeOrdered(atMillis: 7) } } }
            return await group.reduce(into: [String]()) { $0 += $1 }
        }
        #expect(Set(concurrent).count == 40_000 && seen.isDisjoint(with: concurrent))
        // The random part uses every bit: no position is stuck over 1,000 ids.
        let parts = seen.prefix(1_000).map { UInt64($0.suffix(16), radix: 16)! }
        #expect(parts.reduce(0, |) == .max && parts.reduce(.max, &) == 0)
    }

    @Test("UTC formatting matches known instants")
    func utcTime() {
        #expect(UTCTime.format(millis: 0) == "1970-01-01T00:00:00.000Z")
        #expect(UTCTime.format(millis: 1_795_000_000_123) == "2026-11-18T11:06:40.123Z")
        #expect(UTCTime.format(millis: 951_782_400_000, separator: " ", suffix: "+00") == "2000-02-29 00:00:00.000+00")
        #expect(UTCTime.format(millis: -1) == "1969-12-31T23:59:59.999Z")
        #expect(UTCTime.format(millis: 253_402_300_799_999) == "9999-12-31T23:59:59.999Z")
        // Past the four-digit years the fixed-width writer hands over to the general one.
        #expect(UTCTime.format(millis: 253_402_300_800_000) == "10000-01-01T00:00:00.000Z")
    }

    @Test("UTC time appended as bytes reads the same as the formatted string")
    func utcTimeBytes() {
        for millis: Int64 in [0, -1, 1_795_000_000_123, 951_782_400_000, 253_402_300_800_000, -62_135_596_800_001] {
            var bytes: [UInt8] = [0x41]
            UTCTime.append(millis: millis, separator: UInt8(ascii: " "), suffix: "+00", to: &bytes)
            #expect(String(decoding: bytes, as: UTF8.self) == "A" + UTCTime.format(millis: millis, separator: " ", suffix: "+00"))
        }
    }
}

extension TaskTypeRegistryTests {
    @Test("reads schedules, http handlers and default callbacks")
    func schedulesAndHTTP() throws {
        let registry = try TaskTypeRegistry(yaml: """
            types:
              transcribe:
                handler: http
                url: http://127.0.0.1:9000/tasks
                callback_url: https://hooks.example.com/done
            schedules:
              nightly:
                cron: "0 3 * * *"
                time_zone: Europe/Berlin
                type: transcribe
                params: {language: de, retries: [1, 2]}
                missed: all
            """, source: "types.yaml")
        #expect(registry["transcribe"]?.url == "http://127.0.0.1:9000/tasks")
        #expect(registry["transcribe"]?.callbackURL == "https://hooks.example.com/done")
        let nightly = try #require(registry.schedules.first)
        #expect(nightly.name == "nightly" && nightly.type == "transcribe" && nightly.missedTicks == .all)
        #expect(nightly.cron.expression == "0 3 * * *" && nightly.cron.timeZone == "Europe/Berlin")
        #expect(try JSONValue.parse(nightly.params) == .object(["language": .string("de"), "retries": .array([.integer(1), .integer(2)])]))
    }

    @Test("a schedule with a bad cron, an unknown type or time zone, or an http type without a url, is refused by name")
    func badSchedules() throws {
        let cases: [(String, String)] = [
            ("types: {a: {handler: noop}}\nschedules: {s: {cron: '61 * * * *', type: a}}", "schedules.s.cron"),
            ("types: {a: {handler: noop}}\nschedules: {s: {cron: '* * * * *', type: b}}", "schedules.s.type"),
            ("types: {a: {handler: noop}}\nschedules: {s: {cron: '* * * * *', type: a, time_zone: Mars/Base}}", "schedules.s.cron"),
            ("types: {a: {handler: noop}}\nschedules: {s: {cron: '* * * * *', type: a, missed: twice}}", "schedules.s.missed"),
            ("types: {a: {handler: http}}", "types.a.url"),
            ("types: {a: {handler: noop, callback_url: 'ftp://x'}}", "types.a.callback_url"),
        ]
        for (yaml, key) in cases {
            #expect(throws: ConfigurationError.self, "\(key)") { try TaskTypeRegistry(yaml: yaml, source: "t.yaml") }
            do {
                _ = try TaskTypeRegistry(yaml: yaml, source: "t.yaml")
            } catch {
                #expect(error.key.hasSuffix(key), "\(error.key) for \(yaml)")
            }
        }
    }
}
