public import GatewayObservability
public import GatewayClock
public import HTTPTransport
public import Logging
public import TokenBroker
public import ResponseCache
public import TenantModel

/// The gateway's upstream reads, made of parts that each decide one thing:
/// ``UpstreamClients`` (the configured upstreams and what reads them), ``UpstreamHealth``
/// (reachability, readiness, token states), ``TenantReads`` (single tenants through the cache),
/// ``TenantLists`` (`GET /v1/tenants`) and ``PassThroughReads`` (other Veeam reads). What spans them — a purge of both caches, the
/// metrics and the status report — is here.
public final class TenantService: Sendable {
    /// The configured upstreams, their stacks, brokers and clients.
    public let clients: UpstreamClients
    /// What the gateway knows of each upstream's health.
    public let health: UpstreamHealth
    /// Single tenants through the cache.
    public let reads: TenantReads
    /// Aggregated lists and their kept renderings.
    public let lists: TenantLists
    /// Other Veeam reads, passed through under the pass-through policy.
    public let passThrough: PassThroughReads
    /// Customers: VSPC companies joined with their tenants and organizations.
    public let customers: CustomerReads
    /// Publishes a purge to the other replicas, when a shared tier is configured.
    let purgeBroadcast: (@Sendable (_ upstream: String?, _ tenant: String?) async -> Bool)?
    /// The shared tier's state, when one is configured.
    public let sharedStatus: (@Sendable () -> SharedTierStatus)?

    /// Builds brokers and clients for each upstream; `transport` makes an upstream's base transport
    /// from its options (the executable passes libcurl's, over one shared client).
    public init(
        upstreams: [UpstreamDefinition], transport: (TransferOptions) -> any UpstreamTransport, clock: GatewayClock = .continuous, logger: Logger,
        cache: ResponseCache<CachedPayload> = ResponseCache(maxBytes: 0),
        metrics: GatewayMetrics? = nil, probeInterval: Duration = .seconds(10),
        shared: (any SharedSessions)? = nil, sharedCache: SharedFills<CachedPayload>? = nil, sharedStatus: (@Sendable () -> SharedTierStatus)? = nil,
        purgeBroadcast: (@Sendable (_ upstream: String?, _ tenant: String?) async -> Bool)? = nil,
        passThrough: PassThroughPolicy = PassThroughPolicy()
    ) {
        self.purgeBroadcast = purgeBroadcast
        self.sharedStatus = sharedStatus
        let clients = UpstreamClients(upstreams, transport: transport, clock: clock, logger: logger, metrics: metrics, shared: shared)
        let health = UpstreamHealth(clients: clients, board: metrics?.board, probeInterval: probeInterval, clock: clock)
        let reads = TenantReads(clients: clients, health: health, cache: cache, sharedFills: sharedCache, membership: CustomerMembership())
        self.clients = clients
        self.health = health
        self.reads = reads
        let lists = TenantLists(clients: clients, health: health, reads: reads, logger: logger)
        self.lists = lists
        self.customers = CustomerReads(clients: clients, health: health, reads: reads, lists: lists)
        self.passThrough = PassThroughReads(clients: clients, health: health, reads: reads, policy: passThrough)
    }

    /// Each configured upstream's name and product, in configuration order.
    public var upstreams: [(name: String, product: Tenant.Product)] {
        clients.all.map { ($0.definition.name, $0.definition.product) }
    }

    /// For each VSPC upstream that answers, a mark of the newest record of its activity log about
    /// tenants, companies or VB365 organizations ("" when there is none): a mark that changes
    /// says the estate changed, sooner than the next full poll would.
    public func activityMarks() async -> [String: String] {
        var marks: [String: String] = [:]
        for upstream in clients.all {
            guard case .vspc(_, let client) = upstream.runtime, let records = try? await client.activityLogs() else { continue }
            let newest = records.first { $0.concernsTenantsOrCustomers }
            marks[upstream.definition.name] = newest.map { "\($0.date ?? "")|\($0.activityLogType ?? "")|\($0.message ?? "")" } ?? ""
        }
        return marks
    }

    /// `GET /v1/upstreams`: each upstream's facts (``UpstreamHealth/upstreamInfo()``), a VB365
    /// upstream's with which VSPC server it is (``CustomerReads``).
    public func upstreamInfo() async -> [UpstreamInfo] {
        var infos = await health.upstreamInfo()
        for index in infos.indices where infos[index].product == .vb365 {
            infos[index].vspcServers = customers.serverLinks(of: infos[index].name)
        }
        return infos
    }

    /// Purges this replica's caches: everything, one upstream's entries, or one tenant's (a purge
    /// another replica made, heard on the shared tier, comes here). Returns how many entries went.
    public func purgeCache(upstream: String? = nil, tenant: String? = nil) -> Int {
        let scope = CacheKeys.Scope(upstream: upstream, tenant: tenant)
        // Lists are kept apart from single tenants: a tenant's purge leaves them (and what was
        // made of them) as they are.
        if case .tenant = scope {} else { lists.forgetRenderings() }
        return reads.purgeLocal(scope)
    }

    /// `DELETE /v1/cache`: the shared level first (so this replica cannot refill from the old
    /// value there), then this replica's caches, then the other replicas are told (shared tier).
    public func purge(upstream: String?, tenant: String?) async -> PurgeOutcome {
        let reached = await reads.purgeShared(CacheKeys.Scope(upstream: upstream, tenant: tenant))
        let purged = purgeCache(upstream: upstream, tenant: tenant)
        guard let purgeBroadcast else { return PurgeOutcome(purged: purged, replicasTold: nil) }
        let told = await purgeBroadcast(upstream, tenant)
        return PurgeOutcome(purged: purged, replicasTold: reached && told)
    }
}
