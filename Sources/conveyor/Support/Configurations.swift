import ConveyorAgent
import ConveyorConfiguration
import ConveyorCoordinator
import ConveyorCore
import ConveyorFaults
import ConveyorObservability
import ConveyorPostgres
import ConveyorRedis
import Foundation
import Logging

/// Builds each process's configuration from ``SettingsReader``: the one place where settings become
/// typed configuration.
extension SettingsReader {
    func redisConfiguration() throws(ConfigurationError) -> RedisConfiguration {
        var configuration = try RedisConfiguration(
            url: string(Settings.redisURL, default: Settings.redisURL.defaultValue), key: Settings.redisURL.environmentVariable)
        configuration.commandTimeout = try duration(Settings.redisTimeout, default: RedisConfiguration.defaultCommandTimeout, atLeast: .milliseconds(100))
        return configuration
    }

    func postgresConfiguration() throws(ConfigurationError) -> PostgresConfiguration {
        var configuration = try PostgresConfiguration(
            url: string(Settings.postgresURL, default: Settings.postgresURL.defaultValue),
            poolSize: try int(Settings.postgresPoolSize, default: PostgresConfiguration.defaultPoolSize, range: 1...64)!,
            key: Settings.postgresURL.environmentVariable)
        configuration.statementTimeout = try duration(
            Settings.postgresStatementTimeout, default: PostgresConfiguration.defaultStatementTimeout, atLeast: .seconds(2))
        configuration.connectTimeout = try duration(
            Settings.postgresConnectTimeout, default: PostgresConfiguration.defaultConnectTimeout, atLeast: .seconds(2))
        return configuration
    }

    func keys() -> RedisKeys {
        RedisKeys(prefix: string(Settings.redisPrefix, default: RedisKeys.defaultPrefix))
    }

    func coordinatorConfiguration() throws(ConfigurationError) -> CoordinatorConfiguration {
        var configuration = CoordinatorConfiguration(
            redis: try redisConfiguration(), postgres: try postgresConfiguration(),
            instanceID: string(Settings.instanceID, default: "coordinator-\(ProcessInfo.processInfo.hostName)"))
        configuration.host = string(Settings.httpHost, default: "127.0.0.1")
        configuration.port = try int(Settings.httpPort, default: 8080, range: 0...65535)!
        (configuration.apiTokens, configuration.unnamedTokens) = try apiTokens()
        configuration.authDisabled = try bool(Settings.authDisabled, default: false)
        configuration.maxBodyBytes = try int(Settings.maxBodyBytes, default: 1 << 20, range: 1024...(1 << 30))!
        configuration.submitBatchMaxTasks = try int(Settings.submitBatchMax, default: 5000, range: 1000...100_000)!
        configuration.submitQueueMaxTasks = try int(Settings.submitQueueMax, default: 5000, range: 1000...1_000_000)!
        configuration.recorderBatchSize = try int(Settings.recorderBatch, default: 5000, range: 1...100_000)!
        configuration.recorderLinger = try duration(Settings.recorderLinger, default: CoordinatorConfiguration.defaultRecorderLinger)
        configuration.reconcileInterval = try duration(Settings.reconcileInterval, default: .seconds(5))
        configuration.dispatchGrace = try duration(Settings.dispatchGrace, default: .seconds(30))
        configuration.reconcileSweep = try duration(Settings.reconcileSweep, default: CoordinatorConfiguration.defaultReconcileSweep)
        configuration.abandonedEventsAfter = try duration(Settings.recorderTakeoverAfter, default: .seconds(60))
        configuration.retention = try duration(Settings.retention, default: CoordinatorConfiguration.defaultRetention)
        configuration.deadLetterLimit = try int(Settings.deadLetterLimit, default: 10_000, range: 1...100_000_000)!
        configuration.idleConsumerAfter = try duration(Settings.idleConsumerAfter, default: .seconds(900))
        configuration.webhookHosts = webhookHosts()
        configuration.webhookSecret = string(Settings.webhookSecret)
        configuration.webhookRetryFor = try duration(Settings.webhookRetryFor, default: .seconds(86_400))
        configuration.webhookTimeout = try duration(Settings.webhookTimeout, default: .seconds(10))
        configuration.consoleSession = try duration(Settings.consoleSession, default: .seconds(8 * 3600))
        configuration.grafanaURL = string(Settings.grafanaURL)
        configuration.registry = try registry()
        configuration.keys = keys()
        try configuration.validate()
        try armFaults()
        return configuration
    }

    /// `CONVEYOR_WEBHOOK_HOSTS`, a comma-separated list (empty: webhooks off).
    func webhookHosts() -> WebhookHostPolicy {
        WebhookHostPolicy(allowedHosts: (string(Settings.webhookHosts) ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
    }

    /// `CONVEYOR_API_TOKENS` and the lines of `CONVEYOR_API_TOKENS_FILE`, parsed together.
    func apiTokens() throws(ConfigurationError) -> ([APIToken], [String]) {
        var text = string(Settings.apiTokens) ?? ""
        if let path = string(Settings.apiTokensFile) {
            do {
                text += "\n" + (try String(contentsOfFile: path, encoding: .utf8))
            } catch {
                throw ConfigurationError(key: Settings.apiTokensFile.environmentVariable, "cannot read '\(path)': \(error.localizedDescription)")
            }
        }
        return try APIToken.parse(text, key: Settings.apiTokens.environmentVariable)
    }

    /// Arms the test-only crash points named in `CONVEYOR_FAULT`, if any.
    func armFaults() throws(ConfigurationError) {
        if let faults = string(Settings.fault) { try FaultInjection.configure(faults) }
    }

    func agentConfiguration() throws(ConfigurationError) -> AgentConfiguration {
        let pid = ProcessInfo.processInfo.processIdentifier
        var configuration = AgentConfiguration(
            agentID: string(Settings.agentID, default: "\(ProcessInfo.processInfo.hostName)-\(pid)"),
            redis: try redisConfiguration())
        configuration.concurrency = try int(Settings.agentConcurrency, default: 64, range: 1...100_000)!
        configuration.queues = list(Settings.agentQueues)
        configuration.completerLinger = try duration(Settings.completerLinger, default: AgentConfiguration.defaultCompleterLinger)
        configuration.metricsPort = try int(Settings.metricsPort, range: 0...65535)
        configuration.metricsHost = string(Settings.metricsHost, default: "127.0.0.1")
        configuration.executionJournalPath = string(Settings.executionJournal)
        configuration.registry = try registry()
        configuration.keys = keys()
        try configuration.validate()
        try armFaults()
        return configuration
    }

    func shutdownGrace() throws(ConfigurationError) -> Duration {
        try duration(Settings.shutdownGrace, default: .seconds(30))
    }

    /// Sets up JSON (or text) logging and returns the process's root logger.
    func bootstrapLogging(service: String, instance: String) throws(ConfigurationError) -> Logger {
        Observability.configure(enabled: try bool(Settings.observabilityEnabled, default: true))
        if let text = string(Settings.taskLogSample) {
            guard let fraction = Double(text), (0...1).contains(fraction) else {
                throw ConfigurationError(key: Settings.taskLogSample.environmentVariable, "'\(text)' must be a number from 0 to 1")
            }
            TaskLogSampling.configure(fraction: fraction)
        }
        let levelText = string(Settings.logLevel, default: "info")
        guard let level = Logger.Level(rawValue: levelText.lowercased()) else {
            throw ConfigurationError(key: Settings.logLevel.environmentVariable, "'\(levelText)' is not a log level")
        }
        var format: JSONLogHandler.Format?
        if let text = string(Settings.logFormat) {
            guard let parsed = JSONLogHandler.Format(rawValue: text.lowercased()) else {
                throw ConfigurationError(key: Settings.logFormat.environmentVariable, "'\(text)' is not json or text")
            }
            format = parsed
        }
        var loki: LokiShipper?
        if let url = string(Settings.lokiURL) {
            guard let parsed = URL(string: url), parsed.scheme == "http" || parsed.scheme == "https", parsed.host != nil else {
                throw ConfigurationError(key: Settings.lokiURL.environmentVariable, "'\(url)' is not an http(s) URL")
            }
            loki = LokiShipper(url: url, service: service)
        }
        LoggingSetup.bootstrap(service: service, instance: instance, format: format, level: level, loki: loki)
        var logger = Logger(label: "conveyor.\(service)")
        logger.logLevel = level
        return logger
    }
}

/// Runs a command body, turning a ``ConfigurationError`` into one line on stderr and exit status 2.
func reportingConfigurationErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ConfigurationError {
        FileHandle.standardError.write(Data("conveyor: \(error)\n".utf8))
        throw CommandExit.configuration
    } catch let error as LocalServerFailure {
        FileHandle.standardError.write(Data("conveyor: \(error.message)\n".utf8))
        throw CommandExit.failure
    }
}

/// An error already reported to the user; only the exit status remains to be set.
enum CommandExit: Error {
    case configuration
    case failure
}

/// A failure worth one line on stderr and a non-zero exit.
struct LocalServerFailure: Error {
    var message: String
}
