@testable import ConveyorRedis
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
