import Configuration
import ConveyorConfiguration
import ConveyorCore
import Foundation

/// Reads ``Settings`` from flags first, then environment variables (through swift-configuration), and
/// parses them with errors that name the setting. Every setting is read here and nowhere else.
struct SettingsReader {
    private let reader: ConfigReader

    /// - Parameter overrides: values given as command-line flags.
    init(overrides: [Setting: String?] = [:], environment: [String: String] = ProcessInfo.processInfo.environment) {
        var values: [AbsoluteConfigKey: ConfigValue] = [:]
        for (setting, value) in overrides {
            if let value { values[AbsoluteConfigKey([setting.configurationKey])] = ConfigValue(.string(value), isSecret: false) }
        }
        reader = ConfigReader(providers: [
            InMemoryProvider(name: "flags", values: values),
            EnvironmentVariablesProvider(environmentVariables: environment),
        ])
    }

    func string(_ setting: Setting) -> String? {
        if let value = value(forKey: setting.configurationKey, isSecret: setting.isSecret) { return value }
        return setting.fallbackEnvironmentVariable.flatMap { value(forKey: $0.lowercased(), isSecret: setting.isSecret) }
    }

    private func value(forKey key: String, isSecret: Bool) -> String? {
        guard let value = reader.string(forKey: ConfigKey([key]), isSecret: isSecret) else { return nil }
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        return trimmed.isEmpty ? nil : trimmed
    }

    func string(_ setting: Setting, default value: String) -> String {
        string(setting) ?? value
    }

    func int(_ setting: Setting, default value: Int? = nil, range: ClosedRange<Int> = Int.min...Int.max) throws(ConfigurationError) -> Int? {
        guard let text = string(setting) else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw ConfigurationError(key: name(setting), "'\(text)' is not an integer in \(range.lowerBound)…\(range.upperBound)")
        }
        return number
    }

    func bool(_ setting: Setting, default value: Bool) throws(ConfigurationError) -> Bool {
        guard let text = string(setting)?.lowercased() else { return value }
        switch text {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: throw ConfigurationError(key: name(setting), "'\(text)' is not true or false")
        }
    }

    func duration(_ setting: Setting, default value: Duration) throws(ConfigurationError) -> Duration {
        guard let text = string(setting) else { return value }
        guard let parsed = Duration(configurationText: text) else {
            throw ConfigurationError(key: name(setting), "'\(text)' is not a duration such as 500ms, 30s, 5m")
        }
        return parsed
    }

    func duration(_ setting: Setting, default value: Duration, atLeast minimum: Duration) throws(ConfigurationError) -> Duration {
        let parsed = try duration(setting, default: value)
        guard parsed >= minimum else { throw ConfigurationError(key: name(setting), "must be at least \(minimum)") }
        return parsed
    }

    func list(_ setting: Setting) -> [String] {
        (string(setting) ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// The registry file named by `CONVEYOR_TASK_TYPES`, or the built-in registry.
    func registry() throws(ConfigurationError) -> TaskTypeRegistry {
        guard let path = string(Settings.taskTypes) else { return .builtIn }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(key: name(Settings.taskTypes), "cannot read '\(path)': \(error.localizedDescription)")
        }
        return try TaskTypeRegistry(yaml: text, source: path)
    }

    private func name(_ setting: Setting) -> String {
        setting.flag.map { "\(setting.environmentVariable) (\($0))" } ?? setting.environmentVariable
    }
}
