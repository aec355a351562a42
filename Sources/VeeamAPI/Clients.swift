public import VeeamWire
public import HTTPTransport

/// Reads VB365 REST v5 through a transport that already carries the right token.
///
/// Seed 000: `GET /v5/Organization` answers the organization whose credentials obtained the
/// token, so the transport must be authenticated with **that organization's own account**, never
/// an administrator's. The gateway builds one client per configured organization account.
public struct VB365Client: Sendable {
    public let transport: any UpstreamTransport
    public let baseURL: String

    public init(transport: any UpstreamTransport, baseURL: String) {
        self.transport = transport
        self.baseURL = baseURL
    }

    /// `GET /v5/Organization`.
    public func organization() async throws -> VB365Organization {
        let response = try await transport.send(
            UpstreamRequest(url: URLBuilder.url(base: baseURL, path: ["v5", "Organization"]), headers: [("Accept", "application/json")])
        )
        return try response.decoded(VB365Organization.self)
    }
}

/// Reads VSPC REST v3 through a transport that already carries the gateway account's token.
public struct VSPCClient: Sendable {
    public let transport: any UpstreamTransport
    public let baseURL: String
    /// `limit` of each page (VSPC allows 1…500 by default).
    public let pageSize: Int
    /// A bound on pages followed, so a server that never ends its list cannot hold us forever.
    public let maxPages: Int

    public init(transport: any UpstreamTransport, baseURL: String, pageSize: Int = 500, maxPages: Int = 1000) {
        self.transport = transport
        self.baseURL = baseURL
        self.pageSize = max(1, min(pageSize, 500))
        self.maxPages = maxPages
    }

    private func get(_ path: [String], query: [(String, String)] = []) async throws -> UpstreamResponse {
        try await transport.send(
            UpstreamRequest(url: URLBuilder.url(base: baseURL, path: ["api", "v3"] + path, query: query), headers: [("Accept", "application/json")])
        )
    }

    /// `GET /api/v3/infrastructure/sites/tenants/{tenantUid}`.
    public func tenant(uid: String) async throws -> VSPCCloudTenant {
        try await get(["infrastructure", "sites", "tenants", uid]).decoded(VSPCEnvelope<VSPCCloudTenant>.self).data
    }

    /// Every tenant, following `limit`/`offset` to the end.
    public func tenants() async throws -> [VSPCCloudTenant] {
        var all: [VSPCCloudTenant] = []
        var offset = 0
        for _ in 0..<maxPages {
            let page = try await get(["infrastructure", "sites", "tenants"], query: [("limit", String(pageSize)), ("offset", String(offset))])
                .decoded(VSPCEnvelope<[VSPCCloudTenant]>.self)
            all += page.data
            offset += page.data.count
            let total = page.meta?.pagingInfo?.total
            if page.data.isEmpty || page.data.count < pageSize || (total.map { offset >= $0 } ?? false) { break }
        }
        return all
    }

    /// `GET /api/v3/users/me`: the account the gateway logs in with, and its role.
    public func currentUser() async throws -> VSPCUser {
        try await get(["users", "me"]).decoded(VSPCEnvelope<VSPCUser>.self).data
    }
}
