import GatewayRuntime
import GatewayLogging
import GatewayAccess
import ArgumentParser
import CurlHTTP
import Foundation
import GatewayConfig
import GatewayCore
import GatewayHTTP
import Logging
import ServiceLifecycle

/// Reads a config file; when it is invalid, prints every error it holds (a line each: file, key,
/// reason) and exits 1.
func loadConfiguration(_ path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> GatewayConfiguration {
    do {
        let configuration = try GatewayConfiguration.load(path: path, environment: environment)
        try FrontTLS.check(configuration)
        return configuration
    } catch let error as ConfigError {
        let errors = error.all
        let heading = errors.count == 1 ? "invalid configuration: 1 error" : "invalid configuration: \(errors.count) errors"
        FileHandle.standardError.write(Data((heading + "\n" + errors.map { "  \($0)\n" }.joined()).utf8))
        throw ExitCode(1)
    }
}

func makeLogger(level: String, format: String = "text") -> Logger {
    let lineFormat = GatewayLogHandler.Format(rawValue: format) ?? .text
    var logger = Logger(label: "veeam-gateway") { label -> any LogHandler in GatewayLogHandler(label: label, format: lineFormat) }
    logger.logLevel = Logger.Level(rawValue: level) ?? .info
    return logger
}

/// The gateway's long-lived parts: the libcurl client and the HTTP server, one ServiceGroup.
struct GatewayRunner: Service {
    let configuration: GatewayConfiguration
    let logger: Logger
    var port: Int?
    var onRunning: @Sendable (Int) async -> Void = { _ in }

    func run() async throws {
        let eventLoops = GatewayApplication.eventLoopGroup(for: configuration)
        let client = try CurlClient(
            configuration: .init(maxConnectionsPerHost: configuration.maxConnectionsPerHost), eventLoopGroup: eventLoops, logger: logger)
        let metrics = MetricsEndpoint()
        let state = try await GatewayState(configuration: configuration, client: client, metrics: metrics, logger: logger)
        if configuration.callers.isEmpty {
            logger.warning("no callers are configured: every /v1 request will be refused (see callers in the config)")
        }
        // Access lines in the handler's format, straight to its sink (see AccessLog).
        let accessLog = AccessLog.standard(format: GatewayLogHandler.Format(rawValue: configuration.logFormat) ?? .text, logger: logger)
        let app = GatewayApplication.make(state: state.source, logger: logger, metrics: metrics, port: port, accessLog: accessLog, eventLoopGroup: eventLoops) { bound in
            await onRunning(bound)
            // Seed 004: the gateway's own VSPC account must hold a tenant-reading role. Said at
            // start, and by /readyz for as long as it is not so.
            for upstream in await state.snapshot.service.health.readiness().upstreams where !upstream.ready {
                logger.error("upstream not ready", metadata: ["upstream": "\(upstream.upstream)", "reason": "\(upstream.reason ?? "-")"])
            }
            // Which VSPC server each VB365 upstream is (customers join through it): said at start.
            await state.snapshot.service.customers.prepare()
        }
        var services: [any Service] = [client, app]
        // First in the group, so it stops last and sends the spans of the drain.
        if let tracer = try TracingBootstrap.start(configuration.tracing, logger: logger, environment: ProcessInfo.processInfo.environment) {
            services.insert(tracer, at: 0)
        }
        if let metricsApp = GatewayApplication.makeMetrics(state: state.source, logger: logger, metrics: metrics, accessLog: accessLog, onRunning: { bound in
            logger.info("metrics listening", metadata: ["port": "\(bound)"])
        }) {
            services.append(metricsApp)
        }
        services.append(ReloadOnHangup(state: state))
        services.append(
            WebhookDeliveries(
                source: state.source, log: state.feedLog, coordination: state.feedCoordination, board: state.webhookBoard, logger: logger
            ) { CurlTransport(client: client, options: $0) })
        // The change feed's watcher stops first: its log closes, so event streams and long polls
        // end and the servers can drain.
        services.append(FeedWatcher(source: state.source, log: state.feedLog, coordination: state.feedCoordination, logger: logger))
        // Reverse order on shutdown: the watcher, reloads stop, the servers drain, then the client stops.
        let group = ServiceGroup(configuration: .init(services: services, logger: logger))
        try await group.run()
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the gateway API with a config file.")

    @Option(name: .shortAndLong, help: "Config file (YAML).") var config = "config/gateway.yaml"

    func run() async throws {
        let configuration = try loadConfiguration(config)
        let logger = makeLogger(level: configuration.logLevel, format: configuration.logFormat)
        logger.info("starting", metadata: ["config": "\(config)", "listen": "\(configuration.host):\(configuration.port)", "upstreams": "\(configuration.upstreams.count)"])
        var groupConfiguration = ServiceGroupConfiguration(
            services: [GatewayRunner(configuration: configuration, logger: logger)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        // In-flight requests get this long to finish after SIGTERM; then they are cancelled.
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(25)
        groupConfiguration.maximumCancellationDuration = .seconds(5)
        let group = ServiceGroup(configuration: groupConfiguration)
        // Whatever the outcome, the last lines (the reason for stopping among them) are written.
        defer { LogSink.standardError.flush() }
        try await group.run()
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate a config file (and that its secrets can be read); exit 1 with the file and key when invalid.")

    @Argument(help: "Config file (YAML).") var file: String

    func run() throws {
        let configuration = try loadConfiguration(file)
        print("\(file): ok — listen \(configuration.host):\(configuration.port), \(configuration.upstreams.count) upstream(s)")
        for upstream in configuration.upstreams {
            let accounts = upstream.product == .vb365 ? "\(upstream.organizations.count) organization account(s)" : "account \(upstream.account?.username ?? "-")"
            print("  \(upstream.name) (\(upstream.product.rawValue)) \(upstream.baseURL), \(accounts)")
        }
    }
}

struct HashKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash-key", abstract: "Read an API key on stdin and print the keyHash to paste into callers[].keyHash.")

    func run() throws {
        let input = FileHandle.standardInput.readDataToEndOfFile()
        // The same trimming as a secret file's, so a key piped from a file hashes as it is read.
        let key = String(decoding: input, as: UTF8.self).droppingLineEnd()
        guard key.count >= 16 else {
            FileHandle.standardError.write(Data("a key must be at least 16 characters; use a long random string, e.g. openssl rand -base64 32\n".utf8))
            throw ExitCode(1)
        }
        print(APIKey.hash(key))
    }
}
