@testable import ConveyorRedis
import ConveyorCore
import Testing

@Suite("RESP formatting")
struct RESPFormatTests {
    @Test("a pipeline is written exactly as hiredis formats each command, empty, binary and long arguments included")
    func matchesHiredis() {
        var binary = RedisCommand("SET")
        binary.append("k")
        binary.append(bytes: [0, 13, 10, 255, 36])
        var xadd = RedisCommand("XADD", ["conveyor:{q}:ready", "*", "params", String(repeating: "é", count: 600)])
        xadd.append(1_234_567)
        let commands = [RedisCommand("PING"), RedisCommand("SET", ["", "vé"]), binary, xadd, RedisCommand("MGET", (0..<12).map(String.init))]
        let wire = RESPCodec.format(commands)
        #expect(wire == RESPCodec.formatWithHiredis(commands))
        #expect(String(decoding: RESPCodec.format([RedisCommand("SET", ["", "vé"])]), as: UTF8.self) == "*3\r\n$3\r\nSET\r\n$0\r\n\r\n$3\r\nvé\r\n")
    }
}

@Suite("Commands built in place")
struct CommandBuildingTests {
    @Test("a task's XADD written from its envelope is the command its field list gives, every optional field included")
    func xaddFromEnvelope() {
        var full = TaskEnvelope(
            id: TaskID(9_007_199_254_740_993), type: "echo", params: #"{"text":"tab\there é"}"#, correlationID: "c-1",
            attempt: 3, maxAttempts: 5, enqueuedAtMillis: 1_795_000_000_123, hasCallback: true, priority: .high,
            limitKey: "customer:42", dependencies: #"{"a":{"task_id":1}}"#)
        full.rateReservedAt = 1_795_000_000_999
        full.rateSlotAt = -1
        let plain = TaskEnvelope(id: TaskID(1), type: "noop", params: "{}", correlationID: "", attempt: 1, maxAttempts: 1, enqueuedAtMillis: 0)
        for envelope in [full, plain, TaskEnvelope(id: TaskID(2), type: "t", params: "[]", correlationID: "c", attempt: 1, maxAttempts: 3, enqueuedAtMillis: 5, priority: .low)] {
            let direct = RedisConnection.xadd(stream: "conveyor:{q}:ready", envelope: envelope)
            let listed = RedisConnection.xadd(stream: "conveyor:{q}:ready", fields: envelope.fields)
            #expect(direct == listed)
            #expect(RESPCodec.format([direct]) == RESPCodec.formatWithHiredis([listed]))
        }
        #expect(full.fields.map(\.0) == ["id", "type", "params", "cid", "attempt", "max", "enq", "cb", "pri", "lk", "rr", "rs", "deps"])
        #expect(full.fields.first { $0.0 == "rs" }?.1 == "-1")
        #expect(plain.fields.map(\.0) == ["id", "type", "params", "cid", "attempt", "max", "enq"])
    }

    @Test("numbers are written as their digits: zero, negatives, the extremes, and unsigned values beyond Int64")
    func decimals() {
        var command = RedisCommand("X")
        for value: Int64 in [0, 7, -5, Int64.max, Int64.min] { command.append(decimal: value) }
        command.append(UInt64.max)
        command.append(Int32(-12))
        let expected = RedisCommand("X", ["0", "7", "-5", "9223372036854775807", "-9223372036854775808", "18446744073709551615", "-12"])
        #expect(command == expected)
    }
}
