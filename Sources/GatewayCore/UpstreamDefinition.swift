public import HTTPTransport
public import TenantModel
public import TokenBroker
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

/// The request id of the call being served, sent upstream as `X-Request-Id`.
public enum RequestScope {
    @TaskLocal public static var requestID: String?
}

/// Adds `X-Request-Id` (the caller's, or the gateway's) to upstream requests. VSPC treats the
/// header as an idempotency key and wants a UUID; a caller's id that is not one is not sent there.
public struct RequestIDTransport: UpstreamTransport {
    public let base: any UpstreamTransport
    public let uuidOnly: Bool

    public init(base: any UpstreamTransport, uuidOnly: Bool) {
        self.base = base
        self.uuidOnly = uuidOnly
    }

    public func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        guard let id = RequestScope.requestID, !uuidOnly || TenantID.isValidUpstreamID(id) else {
            return try await base.send(request)
        }
        var copy = request
        copy.headers.append(("X-Request-Id", id))
        return try await base.send(copy)
    }
}
