public import SharedTier
public import GatewayClock
public import GatewayAccess
public import Foundation
public import CurlHTTP
public import GatewayConfig
public import GatewayCore
public import Logging
import ResponseCache
public import ServiceLifecycle
import NIOSSL
public import GatewayHTTP
import UnixSignals

/// The composition root: builds the gateway's configuration-derived parts (the tenant service and
/// its upstream stacks, access control, the front end's TLS context) from a configuration, and
/// swaps them whole on reload. Each request takes one snapshot at its start (from ``source``), so
/// it sees either the old configuration or the new one, never a mix.
public final class GatewayState: Sendable {
    /// What the front end reads each request's snapshot from; replaced whole on reload.
    public let source: SnapshotSource
    private let client: CurlClient
    private let metrics: MetricsEndpoint
    private let logger: Logger
    private let clock: GatewayClock
    /// The replicas' shared tier (`shared.redis`), made once: its threads and connections outlive reloads.
    public let sharedTier: RedisSharedSessions?
    /// The purge channel's listener (shared tier): purges made on other replicas, applied here.
    private let purgeListener: RedisSubscriber?
    /// This replica among those sharing the tier (several may run in one process, as in tests).
    private let replicaID = UUID().uuidString.lowercased()

    /// Builds the first snapshot; the libcurl client and the metrics outlive reloads.
    public init(
        configuration: GatewayConfiguration, client: CurlClient, metrics: MetricsEndpoint, logger: Logger,
        clock: GatewayClock = .continuous
    ) async throws {
        self.client = client
        self.metrics = metrics
        self.logger = logger
        self.clock = clock
        if let shared = configuration.sharedRedis {
            var settings = shared.settings
            settings.password = try shared.password.map { try $0.resolve().value }
            let key = try shared.encryptionKey.resolve().value
            self.sharedTier = RedisSharedSessions(client: RedisClient(settings: settings, logger: logger, clock: clock), encryptionKey: key, logger: logger)
            logger.notice("shared tier: Redis", metadata: ["redis": "\(settings.host):\(settings.port)/\(settings.database)", "keyPrefix": "\(settings.keyPrefix)"])
        } else {
            self.sharedTier = nil
        }
        let replica = replicaID
        let source = SnapshotSource(
            try await Self.build(configuration, client: client, metrics: metrics, logger: logger, clock: clock, shared: sharedTier, replica: replica))
        self.source = source
        if let sharedTier {
            self.purgeListener = RedisSubscriber(
                settings: sharedTier.client.settings, channel: Self.purgeChannel(sharedTier), logger: logger
            ) { payload in
                guard let purge = try? JSONDecoder().decode(CachePurge.self, from: Data(payload)), purge.origin != replica else { return }
                let purged = source.snapshot.service.purgeCache(upstream: purge.upstream, tenant: purge.tenant)
                logger.info("purge from another replica", metadata: ["purged": "\(purged)", "upstream": "\(purge.upstream ?? "-")", "tenant": "\(purge.tenant ?? "-")"])
            }
        } else {
            self.purgeListener = nil
        }
    }

    public var snapshot: GatewaySnapshot { source.snapshot }

    deinit {
        purgeListener?.stop()
        sharedTier?.client.shutdown()
    }

    /// The shared tier's purge channel.
    static func purgeChannel(_ shared: RedisSharedSessions) -> String { shared.client.settings.keyPrefix + "purge" }

    /// Whether this replica hears other replicas' purges now (shared tier).
    public var hearsPurges: Bool { purgeListener?.isListening ?? false }

    static func build(
        _ configuration: GatewayConfiguration, client: CurlClient, metrics: MetricsEndpoint, logger: Logger,
        clock: GatewayClock, shared: RedisSharedSessions?, replica: String
    ) async throws -> GatewaySnapshot {
        let tlsContext = try configuration.tls.map { try FrontTLS.context($0, file: configuration.file) }
        let cache = ResponseCache<CachedPayload>(maxBytes: configuration.cacheMaxBytes, maxEntryShare: configuration.cacheMaxEntryShare, clock: clock)
        var sharedStatus: (@Sendable () -> SharedTierStatus)?
        var purgeBroadcast: (@Sendable (String?, String?) async -> Bool)?
        if let shared {
            let channel = purgeChannel(shared)
            purgeBroadcast = { upstream, tenant in
                guard let payload = try? JSONEncoder().encode(CachePurge(origin: replica, upstream: upstream, tenant: tenant)) else { return false }
                return (try? await shared.client.command([Array("PUBLISH".utf8), Array(channel.utf8), Array(payload)])) != nil
            }
            sharedStatus = {
                let counters = shared.client.counters
                return SharedTierStatus(
                    line: shared.statusLine, state: shared.client.breaker.state.rawValue, commands: counters.commands, failures: counters.failures,
                    fallbacks: counters.fastFailures)
            }
        }
        let service = TenantService(
            upstreams: configuration.upstreams, transport: { CurlTransport(client: client, options: $0) }, clock: clock, logger: logger, cache: cache,
            metrics: metrics.metrics, probeInterval: configuration.probeInterval, shared: shared, sharedStatus: sharedStatus,
            purgeBroadcast: purgeBroadcast)
        let access = try await AccessControl.make(configuration, client: client, metrics: metrics.metrics, logger: logger, clock: clock)
        // VB365 `apiVersion: auto`: find (and log) each server's version now, not at the first read.
        Task { await service.prepare() }
        return GatewaySnapshot(configuration: configuration, service: service, access: access, tlsContext: tlsContext)
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
            if configuration.sharedRedis != old.configuration.sharedRedis {
                throw ConfigError(file: path, key: "shared.redis", message: "changing the shared tier takes a restart")
            }
            let next = try await Self.build(configuration, client: client, metrics: metrics, logger: logger, clock: clock, shared: sharedTier, replica: replicaID)
            source.replace(with: next)
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

extension AccessControl {
    /// The access settings of a configuration (resolving the token signing key, if any).
    /// The identity provider's JWKS is fetched through the same ``UpstreamStack`` as every upstream
    /// call (deadline, metrics as upstream `idp`, 429 quiet period, request id).
    public static func make(
        _ configuration: GatewayConfiguration, client: CurlClient, metrics: GatewayMetrics? = nil, logger: Logger, clock: GatewayClock = .continuous
    ) async throws -> AccessControl {
        var issuer: GatewayTokenIssuer?
        if let reference = configuration.tokenSigningKey {
            issuer = await GatewayTokenIssuer(signingKey: try reference.resolve(), issuer: configuration.tokenIssuer, lifetime: configuration.tokenLifetime)
        }
        let idp = configuration.identityProvider.map { settings in
            let stack = UpstreamStack(
                name: "idp", transport: CurlTransport(client: client, options: settings.options), totalTimeout: settings.options.totalTimeout,
                metrics: metrics, logger: logger, maxConcurrentRequests: 4, maxQueuedRequests: 100, uuidRequestIDs: false)
            return IdentityProvider(settings: settings, transport: stack.probes, clock: clock)
        }
        return AccessControl(
            callers: configuration.callers, policy: configuration.policy, defaultRate: configuration.defaultRate,
            failedAuthPerMinute: configuration.failedAuthPerMinute, tokens: issuer, identityProvider: idp,
            trustedProxies: configuration.trustedProxies, clock: clock)
    }
}

