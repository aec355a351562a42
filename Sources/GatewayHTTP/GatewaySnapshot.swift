import GatewayObservability
public import ChangeFeed
public import GatewayAccess
public import GatewayConfig
public import GatewayCore
public import NIOSSL
import Synchronization

/// The configuration-derived parts a request runs under, built by the runtime (GatewayRuntime's
/// `GatewayState`) and swapped whole on reload. A class, so that taking the snapshot (every
/// request, on the hot path too) is one retain.
public final class GatewaySnapshot: Sendable {
    public let configuration: GatewayConfiguration
    public let service: TenantService
    public let access: AccessControl
    /// The front end's TLS context (`listen.tls`), made from the files as they were when this
    /// snapshot was built: new connections take the current one.
    public let tlsContext: NIOSSLContext?
    /// With `listen.tls.crlFile`: the gateway's verification of client certificates.
    public let clientCheck: ClientCertificateCheck?
    /// The change feed's log, when `events` is configured (one log for the process: it outlives reloads).
    public let feed: (any FeedLog)?
    /// The feed's webhook deliveries, as counted (one board for the process).
    public let webhooks: WebhookBoard?

    public init(
        configuration: GatewayConfiguration, service: TenantService, access: AccessControl, tlsContext: NIOSSLContext?,
        clientCheck: ClientCertificateCheck? = nil, feed: (any FeedLog)? = nil, webhooks: WebhookBoard? = nil
    ) {
        self.configuration = configuration
        self.service = service
        self.access = access
        self.tlsContext = tlsContext
        self.clientCheck = clientCheck
        self.feed = feed
        self.webhooks = webhooks
    }
}

/// Where the front end takes each request's snapshot from. The runtime replaces it on reload;
/// the front end only reads it. Kept once per thread shard (``ThreadShards``), so that every
/// request's read takes an uncontended lock; a reload writes every shard.
public final class SnapshotSource: Sendable {
    private let current: ThreadShards<GatewaySnapshot>
    /// Orders reloads: two replacing at once cannot leave shards on different snapshots.
    private let replacing = Mutex(())

    public init(_ snapshot: GatewaySnapshot) {
        self.current = ThreadShards { snapshot }
    }

    /// The snapshot in force now.
    public var snapshot: GatewaySnapshot { current.withCurrent { $0 } }

    /// Puts `snapshot` in force for every request that starts from now on.
    public func replace(with snapshot: GatewaySnapshot) {
        replacing.withLock { _ in
            current.forEach { $0 = snapshot }
        }
    }
}
