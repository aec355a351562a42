import GatewaySecrets
public import GatewayObservability
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
public import ChangeFeed
import UnixSignals
import Crypto
import Synchronization

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
    public let sharedTier: RedisSharedTier?
    /// The shared tier's listener: fills, purges and reloads made on other replicas, applied here.
    private let listener: RedisSubscriber?
    /// The shared cache level's fills (their counters outlive reloads), with the tier.
    private let sharedFills: SharedFills<CachedPayload>?
    /// This replica among those sharing the tier (several may run in one process, as in tests).
    private let replicaID = UUID().uuidString.lowercased()
    /// SHA-256 of the config file's bytes as last loaded: a reload another replica announces is
    /// applied here only when this replica's own file changed since.
    private let loadedDigest: Mutex<String>
    /// Reloads another replica announced reach this state through here (set once built).
    private let reloads = ReloadRelay()
    /// The change feed's log: one for the process, sized by the first configuration's `events`
    /// (snapshots carry it while their configuration has `events`).
    public let feed: EventLog
    /// What the feed's webhooks delivered (one board for the process).
    public let webhookBoard = WebhookBoard()
    /// With a shared tier: the feed the replicas share (this replica's ``feed`` while Redis is away).
    public let sharedFeed: RedisFeed?
    /// The feed readers and writers use: the shared one, else this replica's.
    public var feedLog: any FeedLog { sharedFeed ?? feed }
    /// What the replicas agree on about the feed, with a shared tier.
    public var feedCoordination: (any FeedCoordination)? { sharedFeed }

    /// Builds the first snapshot; the libcurl client and the metrics outlive reloads.
    public init(
        configuration: GatewayConfiguration, client: CurlClient, metrics: MetricsEndpoint, logger: Logger,
        clock: GatewayClock = .continuous
    ) async throws {
        self.client = client
        self.metrics = metrics
        self.logger = logger
        self.clock = clock
        self.loadedDigest = Mutex(Self.digest(of: configuration.file))
        if let shared = configuration.sharedRedis {
            var settings = shared.settings
            settings.password = try shared.password.map { try $0.resolve().value }
            let key = try shared.encryptionKey.resolve().value
            self.sharedTier = RedisSharedTier(settings: settings, encryptionKey: key, logger: logger, clock: clock)
            logger.notice("shared tier: Redis", metadata: ["redis": "\(settings.host):\(settings.port)/\(settings.database)", "keyPrefix": "\(settings.keyPrefix)"])
        } else {
            self.sharedTier = nil
        }
        self.sharedFills = sharedTier.map { SharedPayloads.fills(over: $0.cache, clock: clock) }
        let events = configuration.events ?? EventsConfiguration()
        let feed = EventLog(capacity: events.keep, maxWaiters: events.maxReaders)
        self.feed = feed
        let replicaName = replicaID
        let sharedFeed = sharedTier.map { RedisFeed(client: $0.client, notifier: $0.notifier, local: feed, replica: replicaName) }
        self.sharedFeed = sharedFeed
        let replica = replicaID
        let source = SnapshotSource(
            try await Self.build(
                configuration, client: client, metrics: metrics, logger: logger, clock: clock, shared: sharedTier, fills: sharedFills, replica: replica,
                feed: sharedFeed ?? feed, webhooks: webhookBoard))
        self.source = source
        let reloads = self.reloads
        self.listener = sharedTier?.listen(
            onPurge: { payload in
                guard let purge = try? JSONDecoder().decode(CachePurge.self, from: Data(payload)), purge.origin != replica else { return }
                let purged = source.snapshot.service.purgeCache(upstream: purge.upstream, tenant: purge.tenant)
                logger.info("purge from another replica", metadata: ["purged": "\(purged)", "upstream": "\(purge.upstream ?? "-")", "tenant": "\(purge.tenant ?? "-")"])
            },
            onReload: { payload in
                guard let announced = try? JSONDecoder().decode(ReloadAnnouncement.self, from: Data(payload)), announced.origin != replica else { return }
                reloads.deliver()
            })
        reloads.set { [weak self] in
            guard let self else { return }
            let path = self.snapshot.configuration.file
            guard Self.digest(of: path) != self.loadedDigest.withLock({ $0 }) else {
                logger.info("reload from another replica: this replica's file is unchanged; nothing to do", metadata: ["config": "\(path)"])
                return
            }
            logger.notice("reload from another replica", metadata: ["config": "\(path)"])
            await self.reload(announce: false)
        }
    }

    public var snapshot: GatewaySnapshot { source.snapshot }

    deinit {
        listener?.stop()
        sharedTier?.shutdown()
    }

    /// Whether this replica hears other replicas' fills, purges and reloads now (shared tier).
    public var hearsPurges: Bool { listener?.isListening ?? false }

    /// SHA-256 (hex) of a file's bytes; empty when it cannot be read.
    static func digest(of path: String) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "" }
        return Hex.lowercase(SHA256.hash(data: data))
    }

    static func build(
        _ configuration: GatewayConfiguration, client: CurlClient, metrics: MetricsEndpoint, logger: Logger,
        clock: GatewayClock, shared: RedisSharedTier?, fills: SharedFills<CachedPayload>?, replica: String, feed: any FeedLog, webhooks: WebhookBoard
    ) async throws -> GatewaySnapshot {
        let tlsContext = try configuration.tls.map { try FrontTLS.context($0, file: configuration.file) }
        let clientCheck = try configuration.tls.flatMap { try FrontTLS.clientCheck($0, file: configuration.file) }
        let cache = ResponseCache<CachedPayload>(maxBytes: configuration.cacheMaxBytes, maxEntryShare: configuration.cacheMaxEntryShare, clock: clock)
        var sharedStatus: (@Sendable () -> SharedTierStatus)?
        var purgeBroadcast: (@Sendable (String?, String?) async -> Bool)?
        if let shared {
            purgeBroadcast = { upstream, tenant in
                guard let payload = try? JSONEncoder().encode(CachePurge(origin: replica, upstream: upstream, tenant: tenant)) else { return false }
                return await shared.publish(shared.purgeChannel, Array(payload))
            }
            sharedStatus = {
                let counters = shared.client.counters
                var status = SharedTierStatus(
                    line: shared.statusLine, state: shared.client.breaker.state.rawValue, commands: counters.commands, failures: counters.failures,
                    fallbacks: counters.fastFailures, cache: fills?.statistics ?? SharedLevelStatistics())
                status.ignoredMessages = Dictionary(uniqueKeysWithValues: shared.messages.ignored.map { ($0.key.rawValue, $0.value) })
                return status
            }
        }
        let service = TenantService(
            upstreams: configuration.upstreams, transport: { CurlTransport(client: client, options: $0) }, clock: clock, logger: logger, cache: cache,
            metrics: metrics.metrics, probeInterval: configuration.probeInterval, shared: shared?.sessions, sharedCache: fills, sharedStatus: sharedStatus,
            purgeBroadcast: purgeBroadcast, passThrough: configuration.passThrough)
        let access = try await AccessControl.make(configuration, client: client, metrics: metrics.metrics, logger: logger, clock: clock)
        // VB365 `apiVersion: auto`: find (and log) each server's version now, not at the first read.
        Task { await service.clients.prepare() }
        return GatewaySnapshot(
            configuration: configuration, service: service, access: access, tlsContext: tlsContext, clientCheck: clientCheck,
            feed: configuration.events == nil ? nil : feed, webhooks: webhooks)
    }

    /// Re-reads the config file and swaps it in. An invalid file keeps the running configuration
    /// and logs exactly why; returns whether the new one is in force. Upstream sessions and the
    /// cache start afresh with the new configuration (its upstreams may have changed). The front
    /// end's certificate and key are read again: new connections use them. With a shared tier, a
    /// reload in force is announced (`announce`) to the other replicas, which reload their own
    /// files if those changed.
    @discardableResult
    public func reload(environment: [String: String] = ProcessInfo.processInfo.environment, announce: Bool = true) async -> Bool {
        let old = snapshot
        let path = old.configuration.file
        let digest = Self.digest(of: path)
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
            if let events = configuration.events, events.keep != feed.capacity || events.maxReaders != feed.maxWaiters {
                logger.warning("events.keep and events.maxReaders take effect at the next start", metadata: ["config": "\(path)"])
            }
            let next = try await Self.build(
                configuration, client: client, metrics: metrics, logger: logger, clock: clock, shared: sharedTier, fills: sharedFills, replica: replicaID,
                feed: feedLog, webhooks: webhookBoard)
            source.replace(with: next)
            loadedDigest.withLock { $0 = digest }
            if announce, let sharedTier, let payload = try? JSONEncoder().encode(ReloadAnnouncement(origin: replicaID)) {
                let told = await sharedTier.publish(sharedTier.reloadChannel, Array(payload))
                logger.info("reload announced to the other replicas", metadata: ["told": "\(told)"])
            }
            if configuration.host != old.configuration.host || configuration.port != old.configuration.port {
                logger.warning("listen address changes take effect at the next start", metadata: ["config": "\(path)"])
            }
            logger.notice(
                "configuration reloaded",
                metadata: ["config": "\(path)", "upstreams": "\(configuration.upstreams.count)", "callers": "\(configuration.callers.count)"])
            return true
        } catch let error as ConfigError {
            // Every error of the file, a line each, so one edit can fix them all.
            let errors = error.all
            logger.error("configuration reload refused; the running configuration stays", metadata: ["config": "\(path)", "errors": "\(errors.count)"])
            for each in errors {
                logger.error("configuration error", metadata: ["config": "\(path)", "key": "\(each.key)", "error": "\(each.message)"])
            }
            return false
        } catch {
            logger.error("configuration reload refused; the running configuration stays", metadata: ["config": "\(path)", "error": "\(error)"])
            return false
        }
    }
}

/// A reload as replicas announce it on the shared tier's reload channel.
struct ReloadAnnouncement: Codable {
    var origin: String
}

/// Hands reloads announced by other replicas (heard on the subscriber's thread) to the state,
/// which is set once it is built; each runs in a task of its own, one after the other.
final class ReloadRelay: Sendable {
    private let action = Mutex<(@Sendable () async -> Void)?>(nil)
    private let running = Mutex<Task<Void, Never>?>(nil)

    func set(_ action: @escaping @Sendable () async -> Void) {
        self.action.withLock { $0 = action }
    }

    func deliver() {
        guard let action = action.withLock({ $0 }) else { return }
        running.withLock { running in
            let previous = running
            running = Task {
                await previous?.value
                await action()
            }
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

