public import GatewaySecrets
public import HTTPTransport
public import TenantModel
public import ResponseCache

/// One configured upstream server, as validated by `GatewayConfig`.
public struct UpstreamDefinition: Sendable, Equatable {
    /// `[a-z0-9-]{1,32}`; part of every tenant id.
    public var name: String
    public var product: Tenant.Product
    /// `https://host:port`, no path.
    public var baseURL: String
    /// Trust, timeouts and size cap of this upstream.
    public var options: TransferOptions
    /// VB365: one account per organization (seed 000). Empty for VSPC.
    public var organizations: [Credential]
    /// VSPC: the gateway's account. Nil for VB365.
    public var account: Credential?
    /// VB365: the administrative account that reads this upstream's pass-through form
    /// (`passThrough.account`); nil: that form is refused for this upstream. Never used for an
    /// organization's own reads (seed 000).
    public var passThroughAccount: Credential?
    /// VB365: which VSPC upstream's VB365 server this upstream is (`vspcServer`); nil: found by
    /// the server's name matching this upstream's host (``VSPCServerMatch``).
    public var vspcServer: VSPCServerReference?
    /// VB365: the REST version to speak (`apiVersion`, default `auto`: the newest the server serves).
    public var vb365APIVersion: VB365VersionResolver.Setting = .auto
    /// VSPC: sent as `X-Client-Version` on every request (`clientVersion`, default `3.6`); nil sends none.
    public var vspcClientVersion: String? = "3.6"
    /// Refresh tokens this long before they expire.
    public var refreshSkew: Duration
    /// TTL, stale-while-revalidate and stale-if-error of this upstream's cached results.
    public var freshness = FreshnessPolicy(ttl: .seconds(30), staleWhileRevalidate: .seconds(60), staleIfError: .seconds(600))
    /// The same for this upstream's tenant list (`GET /v1/tenants`); defaults to `freshness`.
    public var listFreshness = FreshnessPolicy(ttl: .seconds(30), staleWhileRevalidate: .seconds(60), staleIfError: .seconds(600))
    /// Requests in flight to this upstream at once; more wait in a queue of `maxQueuedRequests`,
    /// beyond which the gateway answers 503 rather than pile onto a Veeam server.
    public var maxConcurrentRequests = 4
    public var maxQueuedRequests = 100

    public init(
        name: String, product: Tenant.Product, baseURL: String, options: TransferOptions = .init(),
        organizations: [Credential] = [], account: Credential? = nil, refreshSkew: Duration = .seconds(60)
    ) {
        self.name = name
        self.product = product
        self.baseURL = baseURL
        self.options = options
        self.organizations = organizations
        self.account = account
        self.refreshSkew = refreshSkew
    }
}


/// `upstreams[].vspcServer`: a VB365 upstream named as one of a VSPC upstream's VB365 servers.
public struct VSPCServerReference: Sendable, Equatable {
    public var upstream: String
    public var serverUid: String

    public init(upstream: String, serverUid: String) {
        self.upstream = upstream
        self.serverUid = serverUid
    }
}
