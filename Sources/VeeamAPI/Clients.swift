public import VeeamWire
public import HTTPTransport
import Foundation

/// Reads VB365 REST (v5 to v8, ``VB365APIVersion``) through a transport that already carries the
/// right token.
///
/// Seed 000: `GET /vN/Organization` answers the organization whose credentials obtained the
/// token, so the transport must be authenticated with **that organization's own account**, never
/// an administrator's. The gateway builds one client per configured organization account.
public struct VB365Client: Sendable {
    public let transport: any UpstreamTransport
    public let baseURL: String
    public let version: VB365APIVersion

    public init(transport: any UpstreamTransport, baseURL: String, version: VB365APIVersion) {
        self.transport = transport
        self.baseURL = baseURL
        self.version = version
    }

    private func get(_ path: [String], query: [(String, String)] = []) async throws -> UpstreamResponse {
        let response = try await transport.send(
            UpstreamRequest(
                url: URLBuilder.url(base: baseURL, path: [version.rawValue] + path, query: query), headers: [("Accept", "application/json")])
        )
        // Every route read here exists in every version, for every account that may call it: a 404
        // means the server does not serve this version (an upgrade or a downgrade since it was chosen).
        if response.status == 404 {
            throw VeeamAPIError(code: .versionUnsupported, status: 404, upstreamMessage: "GET /\(version)/\(path.joined(separator: "/")) is not served")
        }
        return response
    }

    /// `GET /vN/{path}?{query}` as the server answers it, whatever the status (pass-through:
    /// the caller of this decides what a 404 means).
    public func read(_ path: [String], query: [(String, String)] = []) async throws -> UpstreamResponse {
        try await transport.send(
            UpstreamRequest(url: URLBuilder.url(base: baseURL, path: [version.rawValue] + path, query: query), headers: [("Accept", "application/json")]))
    }

    /// A caller's write to `/vN/{path}?{query}`, sent once (never retried), as the server answers it.
    public func write(_ method: HTTPMethod, _ path: [String], query: [(String, String)] = [], json body: [UInt8]?) async throws -> UpstreamResponse {
        try await transport.send(
            UpstreamRequest(
                method: method, url: URLBuilder.url(base: baseURL, path: [version.rawValue] + path, query: query), headers: [("Accept", "application/json")],
                body: body.map { .json($0) }, retryable: false))
    }

    /// `GET /vN/Organization`.
    public func organization() async throws -> VB365Organization {
        try await get(["Organization"]).decoded(VB365Organization.self)
    }

    /// `GET /vN/ServiceInstance`: the installation id and VB365 build.
    public func serviceInstance() async throws -> VB365ServiceInstance {
        try await get(["ServiceInstance"]).decoded(VB365ServiceInstance.self)
    }

    /// `GET /vN/Organizations`, the administrator's view: one array up to v7; v8 pages it
    /// (`limit` up to 10,000, no total) and this follows the pages to the end. A server that does
    /// not honour `offset` (a page that does not echo it, or repeats the previous page's first
    /// id) ends the walk with ``VeeamAPIError/Code/badResponse`` instead of looping; `maxPages`
    /// bounds it in any case.
    public func organizations(pageSize: Int = 1000, maxPages: Int = 1000) async throws -> [VB365OrganizationSummary] {
        let view = [("extendedView", "false")]
        guard version.pagesOrganizations else {
            return try await get(["Organizations"], query: version.requiresExtendedView ? view : []).decoded([VB365OrganizationSummary].self)
        }
        let limit = max(1, min(pageSize, 10_000))
        var all: [VB365OrganizationSummary] = []
        var previousFirst: String?
        for _ in 0..<maxPages {
            let offset = all.count
            let page = try await get(["Organizations"], query: [("limit", String(limit)), ("offset", String(offset))])
                .decoded(VB365Page<VB365OrganizationSummary>.self)
            guard page.offset == offset, page.results.first?.id == nil || page.results.first?.id != previousFirst else {
                throw VeeamAPIError(
                    code: .badResponse, status: 200, upstreamMessage: "GET /v8/Organizations ignored offset \(offset) (answered offset \(page.offset))")
            }
            all += page.results
            previousFirst = page.results.first?.id
            if page.results.count < min(limit, page.limit) || page.results.isEmpty { return all }
        }
        throw VeeamAPIError(code: .badResponse, status: 200, upstreamMessage: "GET /v8/Organizations did not end within \(maxPages) pages")
    }

    /// Finds the newest version a server speaks, without credentials: `GET /vN/Organization`
    /// with no token, newest first. A server that serves vN answers 401 (its API refusing the
    /// missing bearer); one that does not serves a 404 from its router. The first 401 wins; a
    /// 429, a 5xx, any other status (a proxy or firewall answering for the server) or a transport
    /// error ends the search with that error, so a server in trouble is not mistaken for an old
    /// one. Costs at most four anonymous requests
    /// and no login attempt (nothing an account lockout counts).
    public static func discoverVersion(transport: any UpstreamTransport, baseURL: String) async throws -> VB365VersionDiscovery {
        var probes: [VB365VersionDiscovery.Probe] = []
        for version in VB365APIVersion.allCases.reversed() {
            let response = try await transport.send(
                UpstreamRequest(
                    url: URLBuilder.url(base: baseURL, path: [version.rawValue, "Organization"]), headers: [("Accept", "application/json")]))
            probes.append(.init(version: version, status: response.status))
            switch response.status {
            case 404: continue
            case 401, 200: return VB365VersionDiscovery(version: version, probes: probes)
            case 429, 500...: throw VeeamAPIError.from(response)
            default:
                // A proxy, a firewall or a redirect answers for the server: no version can be told.
                throw VeeamAPIError(
                    code: .badResponse, status: response.status,
                    upstreamMessage: "GET /\(version)/Organization without a token answered \(response.status), not 401 or 404")
            }
        }
        return VB365VersionDiscovery(version: nil, probes: probes)
    }
}

/// What ``VB365Client/discoverVersion(transport:baseURL:)`` found: the version, if any, and the
/// status each probe got (for the log).
public struct VB365VersionDiscovery: Sendable, Equatable {
    public struct Probe: Sendable, Equatable {
        public var version: VB365APIVersion
        public var status: Int
    }
    /// Nil: the server answered 404 to every version this gateway knows.
    public var version: VB365APIVersion?
    public var probes: [Probe]

    /// `GET /v8/Organization → 404, GET /v7/Organization → 401`.
    public var method: String {
        probes.map { "GET /\($0.version)/Organization → \($0.status)" }.joined(separator: ", ")
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

    /// Sent as `X-Client-Version` (the REST version the gateway was written against), or not at all.
    public let clientVersion: String?

    public init(transport: any UpstreamTransport, baseURL: String, clientVersion: String? = nil, pageSize: Int = 500, maxPages: Int = 1000) {
        self.transport = transport
        self.baseURL = baseURL
        self.clientVersion = clientVersion
        self.pageSize = max(1, min(pageSize, 500))
        self.maxPages = maxPages
    }

    private func get(_ path: [String], query: [(String, String)] = []) async throws -> UpstreamResponse {
        var headers: [(name: String, value: String)] = [("Accept", "application/json")]
        if let clientVersion { headers.append((name: "X-Client-Version", value: clientVersion)) }
        return try await transport.send(
            UpstreamRequest(url: URLBuilder.url(base: baseURL, path: ["api", "v3"] + path, query: query), headers: headers)
        )
    }

    /// `GET /api/v3/{path}?{query}` as the server answers it, whatever the status (pass-through).
    public func read(_ path: [String], query: [(String, String)] = []) async throws -> UpstreamResponse {
        try await get(path, query: query)
    }

    /// A caller's write to `/api/v3/{path}?{query}`, sent once (never retried), as the server
    /// answers it. The request id (the stack's, from the caller's `X-Request-Id`) is VSPC's
    /// idempotency key.
    public func write(_ method: HTTPMethod, _ path: [String], query: [(String, String)] = [], json body: [UInt8]?) async throws -> UpstreamResponse {
        var headers: [(name: String, value: String)] = [("Accept", "application/json")]
        if let clientVersion { headers.append((name: "X-Client-Version", value: clientVersion)) }
        return try await transport.send(
            UpstreamRequest(
                method: method, url: URLBuilder.url(base: baseURL, path: ["api", "v3"] + path, query: query), headers: headers,
                body: body.map { .json($0) }, retryable: false))
    }

    /// `GET /api/v3/infrastructure/sites/tenants/{tenantUid}`.
    public func tenant(uid: String) async throws -> VSPCCloudTenant {
        try await get(["infrastructure", "sites", "tenants", uid]).decoded(VSPCEnvelope<VSPCCloudTenant>.self).data
    }

    /// Every tenant, following `limit`/`offset` to the end.
    public func tenants() async throws -> [VSPCCloudTenant] {
        try await all(["infrastructure", "sites", "tenants"])
    }

    /// Every company (`GET /organizations/companies`), to the end.
    public func companies() async throws -> [VSPCCompany] {
        try await all(["organizations", "companies"])
    }

    /// Every VB365 server VSPC manages.
    public func vb365Servers() async throws -> [VSPCVb365Server] {
        try await all(["infrastructure", "vb365Servers"])
    }

    /// Every VB365 organization of every server VSPC manages.
    public func vb365Organizations() async throws -> [VSPCVb365Organization] {
        try await all(["infrastructure", "vb365Servers", "organizations"])
    }

    /// The newest `limit` records of VSPC's activity log (newest first, as VSPC sorts by default).
    public func activityLogs(limit: Int = 100) async throws -> [VSPCActivityLog] {
        try await get(["eventLogs", "activityLogs"], query: [("limit", String(max(1, min(limit, pageSize)))), ("offset", "0")])
            .decoded(VSPCEnvelope<[VSPCActivityLog]>.self).data
    }

    /// Every mapping of a VB365 organization to a company.
    public func companyMappings() async throws -> [VSPCCompanyMapping] {
        try await all(["infrastructure", "vb365Servers", "organizations", "companyMappings"])
    }

    /// A collection, following `limit`/`offset` to the end (at most `maxPages` pages).
    private func all<Item: Decodable & Sendable>(_ path: [String]) async throws -> [Item] {
        var all: [Item] = []
        var offset = 0
        for _ in 0..<maxPages {
            let page = try await get(path, query: [("limit", String(pageSize)), ("offset", String(offset))]).decoded(VSPCEnvelope<[Item]>.self)
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
