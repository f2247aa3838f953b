/// A configuration value that cannot be used. Its description is the one line the CLI prints before
/// exiting non-zero, so it names the setting and says what is wrong with it.
public struct ConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The setting, as the user wrote it (an env var, a flag, a YAML path).
    public var key: String
    public var message: String

    public init(key: String, _ message: String) {
        self.key = key
        self.message = message
    }

    public var description: String { "\(key): \(message)" }
}
