import ConveyorCore
import ConveyorRedis
import Testing

@Suite("Redis configuration and keys")
struct RedisConfigurationTests {
    @Test("parses redis://[user:password@]host:port/db")
    func parsesURLs() throws {
        let full = try RedisConfiguration(url: "redis://app:s3cr%40t@cache.internal:6380/2")
        #expect(full.host == "cache.internal")
        #expect(full.port == 6380)
        #expect(full.username == "app")
        #expect(full.password == "s3cr@t")
        #expect(full.database == 2)
        #expect(full.redactedURL == "redis://app:***@cache.internal:6380/2")
        let bare = try RedisConfiguration(url: "redis://localhost")
        #expect(bare.port == 6379 && bare.database == 0 && bare.password == nil)
        let passwordOnly = try RedisConfiguration(url: "redis://:pw@h:1/0")
        #expect(passwordOnly.username == nil && passwordOnly.password == "pw")
    }

    @Test("rejects what is not a redis URL, naming the setting", arguments: [
        "http://localhost:6379", "redis://host:notaport", "redis://host:70000", "redis://host:6379/x", "redis://",
    ])
    func rejectsBadURLs(url: String) {
        #expect(throws: ConfigurationError.self) { try RedisConfiguration(url: url) }
        do {
            _ = try RedisConfiguration(url: url)
        } catch {
            #expect(error.key == "CONVEYOR_REDIS_URL")
        }
    }

    @Test("a password never appears in the error message")
    func redactsPasswordInErrors() {
        do {
            _ = try RedisConfiguration(url: "redis://u:hunter2@host:bad/0")
            Issue.record("accepted a bad port")
        } catch {
            #expect(!error.description.contains("hunter2"))
        }
    }

    @Test("every key of one queue shares a hash tag, so one Lua script may touch them all")
    func keysShareHashTag() {
        let keys = RedisKeys(prefix: "cv")
        for key in [keys.ready("img"), keys.delayed("img"), keys.dead("img"), keys.events("img")] {
            #expect(key.hasPrefix("cv:{img}:"))
        }
    }

    @Test("a command keeps its arguments byte for byte, including empty ones")
    func commandArguments() {
        var command = RedisCommand("XADD", ["s", "*"])
        command.append("")
        command.append("é")
        command.append(42)
        #expect(command.argumentCount == 6)
        #expect(command.name == "XADD")
        #expect(command.lengths == [4, 1, 1, 0, 2, 2])
    }
}
