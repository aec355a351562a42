public import GatewayAccess
public import Foundation
public import CurlHTTP
public import GatewayConfig
public import GatewayCore
public import Logging
import ResponseCache
public import ServiceLifecycle
public import NIOSSL
import Synchronization
import UnixSignals

/// The running gateway's configuration-derived parts, swapped whole on reload. Each request takes
/// one snapshot at its start, so it sees either the old configuration or the new one, never a mix.
public final class GatewayState: Sendable {
    /// A class, so that taking the snapshot (every request, on the hot path too) is one retain.
    public final class Snapshot: Sendable {
        public let configuration: GatewayConfiguration
        public let service: TenantService
        public let access: AccessControl
        /// The front end's TLS context (`listen.tls`), made from the files as they were when
        /// this snapshot was built: new connections take the current one.
        public let tlsContext: NIOSSLContext?

        init(configuration: GatewayConfiguration, service: TenantService, access: AccessControl, tlsContext: NIOSSLContext?) {
            self.configuration = configuration
            self.service = service
            self.access = access
            self.tlsContext = tlsContext
        }
    }

    private let current: Mutex<Snapshot>
    private let client: CurlClient
    private let metrics: MetricsEndpoint
    private let logger: Logger
    private let cacheClock: @Sendable () -> ContinuousClock.Instant

    /// Builds the first snapshot; the libcurl client and the metrics outlive reloads.
    public init(
        configuration: GatewayConfiguration, client: CurlClient, metrics: MetricsEndpoint, logger: Logger,
        cacheClock: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }
    ) async throws {
        self.client = client
        self.metrics = metrics
        self.logger = logger
        self.cacheClock = cacheClock
        self.current = Mutex(try await Self.build(configuration, client: client, metrics: metrics, logger: logger, cacheClock: cacheClock))
    }

    public var snapshot: Snapshot { current.withLock { $0 } }

    static func build(
        _ configuration: GatewayConfiguration, client: CurlClient, metrics: MetricsEndpoint, logger: Logger,
        cacheClock: @escaping @Sendable () -> ContinuousClock.Instant
    ) async throws -> Snapshot {
        let tlsContext = try configuration.tls.map { try FrontTLS.context($0, file: configuration.file) }
        let cache = ResponseCache<CachedPayload>(maxBytes: configuration.cacheMaxBytes, maxEntryShare: configuration.cacheMaxEntryShare, now: cacheClock)
        let service = TenantService(
            upstreams: configuration.upstreams, transport: { CurlTransport(client: client, options: $0) }, logger: logger, cache: cache, metrics: metrics.metrics,
            probeInterval: configuration.probeInterval)
        let access = try await AccessControl.make(configuration, client: client)
        return Snapshot(configuration: configuration, service: service, access: access, tlsContext: tlsContext)
    }

    /// Re-reads the config file and swaps it in. An invalid file keeps the running configuration
    /// and logs exactly why; returns whether the new one is in force. Upstream sessions and the
    /// cache start afresh with the new configuration (its upstreams may have changed). The front
    /// end's certificate and key are read again: new connections use them.
    @discardableResult
    public func reload(environment: [String: String] = ProcessInfo.processInfo.environment) async -> Bool {
        let old = snapshot
        let path = old.configuration.file
        do {
            let configuration = try GatewayConfiguration.load(path: path, environment: environment)
            // The listener was built with or without TLS at start: a reload may renew the
            // certificate, never turn TLS on or off (that would silently change what callers reach).
            if (configuration.tls == nil) != (old.configuration.tls == nil) {
                throw ConfigError(file: path, key: "listen.tls", message: "turning TLS on or off takes a restart")
            }
            let next = try await Self.build(configuration, client: client, metrics: metrics, logger: logger, cacheClock: cacheClock)
            current.withLock { $0 = next }
            if configuration.host != old.configuration.host || configuration.port != old.configuration.port {
                logger.warning("listen address changes take effect at the next start", metadata: ["config": "\(path)"])
            }
            logger.notice(
                "configuration reloaded",
                metadata: ["config": "\(path)", "upstreams": "\(configuration.upstreams.count)", "callers": "\(configuration.callers.count)"])
            return true
        } catch {
            logger.error("configuration reload refused; the running configuration stays", metadata: ["config": "\(path)", "error": "\(error)"])
            return false
        }
    }
}

/// Reloads the configuration on SIGHUP (a ServiceLifecycle service).
public struct ReloadOnHangup: Service {
    public let state: GatewayState
    public init(state: GatewayState) { self.state = state }

    public func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            await state.reload()
        }
    }
}
