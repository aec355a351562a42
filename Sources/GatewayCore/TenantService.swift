public import CurlHTTP
import Foundation
public import Logging
public import TenantModel
public import TokenBroker
import Synchronization
public import ResponseCache
import VeeamAPI

/// Query of `GET /v1/tenants`.
public struct TenantQuery: Sendable, Equatable {
    public var product: Tenant.Product?
    public var upstream: String?
    /// Name contains, case-insensitive.
    public var q: String?
    public var limit: Int = 100
    public var offset: Int = 0
    public init(product: Tenant.Product? = nil, upstream: String? = nil, q: String? = nil, limit: Int = 100, offset: Int = 0) {
        self.product = product
        self.upstream = upstream
        self.q = q
        self.limit = limit
        self.offset = offset
    }
}

/// One upstream's part of a list answer.
public struct SourceStatus: Sendable, Encodable, Equatable {
    public var upstream: String
    public var product: Tenant.Product
    /// `ok`, `stale` or `error`.
    public var status: String
    public var fetchedAt: String
    public var count: Int
    public var problem: ProblemSummary?

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(upstream, forKey: .upstream)
        try c.encode(product, forKey: .product)
        try c.encode(status, forKey: .status)
        try c.encode(fetchedAt, forKey: .fetchedAt)
        try c.encode(count, forKey: .count)
        try c.encode(problem, forKey: .problem)
    }

    enum CodingKeys: String, CodingKey { case upstream, product, status, fetchedAt, count, problem }
}

/// A problem object inside `meta.sources` (RFC 9457 members plus our `code`).
public struct ProblemSummary: Sendable, Encodable, Equatable {
    public var type: String
    public var title: String
    public var status: Int
    public var detail: String
    public var code: String

    public init(_ error: GatewayError) {
        self.type = error.problemType
        self.title = error.title
        self.status = error.status
        self.detail = error.detail
        self.code = error.code
    }
}

/// `GET /v1/tenants` answer.
public struct TenantList: Sendable, Encodable {
    public var data: [Tenant]
    public var meta: Meta
    /// Not encoded: for `X-Cache`, `Age` and `Cache-Control`.
    public var cacheStatus: CacheStatus?
    public var age = 0
    public var maxAge = 0

    enum CodingKeys: String, CodingKey { case data, meta }

    public struct Meta: Sendable, Encodable {
        public var total: Int
        public var limit: Int
        public var offset: Int
        public var sources: [SourceStatus]
    }
}

/// A list answer ready to send, with what the front end needs for its headers.
public struct ListAnswer: Sendable {
    public var body: [UInt8]
    public var etag: String
    public var cacheStatus: CacheStatus?
    public var age: Int
    public var maxAge: Int
}

/// A list rendering and the cache entries (by time of storing) it was made from.
struct RenderedList: Sendable {
    var stamps: [ContinuousClock.Instant?]
    var body: [UInt8]
    var etag: String
}

/// What `/v1/upstreams` shows of an upstream: no secrets.
public struct UpstreamInfo: Sendable, Encodable {
    public var name: String
    public var product: Tenant.Product
    public var baseURL: String
    public var accounts: Int
    public var tokenState: String
    public var reachable: Bool?
}

/// Reads tenants from every configured upstream: aggregation with per-source timeouts and
/// partial results, single reads by `{upstream}.{id}`.
public final class TenantService: Sendable {
    struct VB365Org: Sendable {
        let credential: Credential
        let broker: TokenBroker
        let client: VB365Client
    }

    enum Runtime: Sendable {
        case vb365([VB365Org])
        case vspc(TokenBroker, VSPCClient)
    }

    struct Upstream: Sendable {
        let definition: UpstreamDefinition
        let runtime: Runtime
    }

    let upstreams: [Upstream]
    let logger: Logger
    /// Normalized per-upstream results, when caching is on.
    let cache: ResponseCache<CachedPayload>
    /// Rendered list answers, reused while their sources are unchanged (a quarter of the cache's bound).
    let renderings: ResponseCache<RenderedList>
    let freshness: [String: FreshnessPolicy]
    let listFreshness: [String: FreshnessPolicy]
    /// Upstreams that answered 429: not called again before this instant.
    let throttledUntil = Mutex<[String: ContinuousClock.Instant]>([:])
    /// VB365 organization id → index of the account that reads it (learned from reads).
    private let organizationIndex = Mutex<[String: Int]>([:])
    private let reachability = Mutex<[String: Bool]>([:])
    /// Tenant ids already resolved by ``locate(_:)`` (valid ones only, at most 8,192).
    let locations = Mutex<[String: TenantLocation]>([:])

    /// Builds brokers and clients for each upstream over one shared libcurl client.
    public init(
        upstreams: [UpstreamDefinition], client: CurlClient, clock: BrokerClock = .continuous, logger: Logger,
        cache: ResponseCache<CachedPayload> = ResponseCache(maxBytes: 0),
        metrics: GatewayMetrics? = nil
    ) {
        self.logger = logger
        self.cache = cache
        self.renderings = ResponseCache(maxBytes: cache.maxBytes / 4, maxEntryShare: 0.5)
        self.freshness = Dictionary(uniqueKeysWithValues: upstreams.map { ($0.name, $0.freshness) })
        self.listFreshness = Dictionary(uniqueKeysWithValues: upstreams.map { ($0.name, $0.listFreshness) })
        self.upstreams = upstreams.map { definition in
            let raw = CurlTransport(client: client, options: definition.options)
            let curl: any UpstreamTransport = metrics.map { MetricsTransport(base: raw, upstream: definition.name, metrics: $0) } ?? raw
            let gate = ConcurrencyGate(upstream: definition.name, limit: definition.maxConcurrentRequests, queue: definition.maxQueuedRequests)
            let base = GatedTransport(base: RequestIDTransport(base: curl, uuidOnly: definition.product == .vspc), gate: gate)
            switch definition.product {
            case .vb365:
                let grants = OAuthTokenEndpoint.vb365(transport: curl, baseURL: definition.baseURL, upstream: definition.name)
                let orgs = definition.organizations.map { credential in
                    let broker = TokenBroker(
                        upstream: definition.name, credential: credential, grants: grants, refreshSkew: definition.refreshSkew, clock: clock, logger: logger)
                    return VB365Org(
                        credential: credential, broker: broker,
                        client: VB365Client(transport: AuthenticatedTransport(base: base, broker: broker), baseURL: definition.baseURL))
                }
                return Upstream(definition: definition, runtime: .vb365(orgs))
            case .vspc:
                let grants = OAuthTokenEndpoint.vspc(transport: curl, baseURL: definition.baseURL, upstream: definition.name)
                let credential = definition.account ?? Credential(username: "", password: .env(""))
                let broker = TokenBroker(
                    upstream: definition.name, credential: credential, grants: grants, refreshSkew: definition.refreshSkew, clock: clock, logger: logger)
                let vspc = VSPCClient(transport: AuthenticatedTransport(base: base, broker: broker), baseURL: definition.baseURL)
                return Upstream(definition: definition, runtime: .vspc(broker, vspc))
            }
        }
    }

    /// The brokers of an upstream (for tests, readiness and `/v1/upstreams`).
    public func brokers(of upstream: String) -> [TokenBroker] {
        guard let found = upstreams.first(where: { $0.definition.name == upstream }) else { return [] }
        switch found.runtime {
        case .vb365(let orgs): return orgs.map(\.broker)
        case .vspc(let broker, _): return [broker]
        }
    }

    // MARK: Reads

    /// One tenant by `{upstream}.{id}`. A malformed id is a 400 and a refused caller a 403 (or,
    /// scoped, a 404), both before any cache lookup or upstream call.
    public func tenant(id: String, caller: Caller, policy: AccessPolicy) async throws -> Tenant {
        try await tenantAnswer(id: id, caller: caller, policy: policy).tenant
    }

    func read(_ upstream: Upstream, id: String) async throws -> Tenant? {
        let name = upstream.definition.name
        switch upstream.runtime {
        case .vspc(_, let client):
            do {
                return Normalize.cloudTenant(try await client.tenant(uid: id), upstream: name)
            } catch let error as VeeamAPIError where error.code == .notFound {
                return nil
            }
        case .vb365(let orgs):
            // Seed 000: each organization is readable only with its own account.
            if let index = organizationIndex.withLock({ $0[name + "." + id] }), index < orgs.count {
                let org = try await orgs[index].client.organization()
                if org.id.lowercased() == id { return Normalize.organization(org, upstream: name) }
            }
            let (tenants, failures) = await readOrganizations(name, orgs)
            if let match = tenants.first(where: { $0.source.id == id }) { return match }
            if let failure = failures.first { throw failure }
            return nil
        }
    }

    func readOrganizations(_ name: String, _ orgs: [VB365Org]) async -> ([Tenant], [any Error]) {
        await withTaskGroup(of: (Int, Result<VB365Organization, any Error>).self) { group in
            for (index, org) in orgs.enumerated() {
                group.addTask {
                    do { return (index, .success(try await org.client.organization())) } catch { return (index, .failure(error)) }
                }
            }
            var tenants: [Tenant] = []
            var failures: [any Error] = []
            for await (index, result) in group {
                switch result {
                case .success(let org):
                    organizationIndex.withLock { $0[name + "." + org.id.lowercased()] = index }
                    tenants.append(Normalize.organization(org, upstream: name))
                case .failure(let error):
                    logger.warning("organization read failed", metadata: ["upstream": "\(name)", "account": "\(orgs[index].credential.username)", "error": "\(error)"])
                    failures.append(error)
                }
            }
            return (tenants, failures)
        }
    }

    /// Every upstream at once, each within its own timeout; whatever came back, plus
    /// `meta.sources`. One dead or slow upstream never fails or stalls the list.
    /// Only what `caller` may read is fetched and returned: an upstream none of whose tenants the
    /// caller may see is not asked at all.
    public func list(_ query: TenantQuery, caller: Caller, policy: AccessPolicy, bypassCache: Bool = false) async -> TenantList {
        let results = await gather(selectUpstreams(query, caller: caller, policy: policy), bypass: bypassCache)
        return assemble(query, caller: caller, policy: policy, results)
    }

    /// ``list(_:caller:policy:bypassCache:)`` as bytes ready to send. The rendering (filter, sort,
    /// page, JSON) is kept per (what the caller may see, query) and reused while every source it
    /// came from is the same fresh cache entry: a hot list costs a lookup, not a re-encoding.
    public func listAnswer(_ query: TenantQuery, caller: Caller, policy: AccessPolicy, bypassCache: Bool = false) async -> ListAnswer {
        let selected = selectUpstreams(query, caller: caller, policy: policy)
        let results = await gather(selected, bypass: bypassCache)
        let (status, age, maxAge) = summarize(selected, statuses: results.map(\.status), ages: results.map(\.age))
        let key = renderingKey(query, caller: caller, policy: policy)
        let stamps = results.map(\.storedAt)
        if status == .hit, let rendered = renderings.peek(key, countingHit: false)?.entry.value, rendered.stamps == stamps {
            return ListAnswer(body: rendered.body, etag: rendered.etag, cacheStatus: status, age: age, maxAge: maxAge)
        }
        let body = GatewayJSON.encode(assemble(query, caller: caller, policy: policy, results))
        let etag = GatewayJSON.etag(body)
        if status == .hit, stamps.allSatisfy({ $0 != nil }) {
            renderings.store(key, value: RenderedList(stamps: stamps, body: body, etag: etag), bytes: body.count, etag: etag, policy: .init(ttl: .seconds(3600)))
        }
        return ListAnswer(body: body, etag: etag, cacheStatus: status, age: age, maxAge: maxAge)
    }

    /// The synchronous part of ``listAnswer(_:caller:policy:bypassCache:)`` for the hot path: the
    /// kept rendering when every source is fresh in the cache and it was rendered from exactly
    /// those entries; nil otherwise (the async path then renders and keeps it). Never waits.
    public func cachedListAnswer(_ query: TenantQuery, caller: Caller, policy: AccessPolicy) -> ListAnswer? {
        let selected = selectUpstreams(query, caller: caller, policy: policy)
        var stamps: [ContinuousClock.Instant?] = []
        var ages: [Int] = []
        for upstream in selected {
            guard let answer = cache.peek("list|" + upstream.definition.name, countingHit: false) else { return nil }
            stamps.append(answer.entry.storedAt)
            ages.append(answer.age)
        }
        guard let rendered = renderings.peek(renderingKey(query, caller: caller, policy: policy), countingHit: false)?.entry.value,
            rendered.stamps == stamps
        else { return nil }
        cache.recordHits(selected.count)
        let (status, age, maxAge) = summarize(selected, statuses: selected.map { _ in .hit }, ages: ages)
        return ListAnswer(body: rendered.body, etag: rendered.etag, cacheStatus: status, age: age, maxAge: maxAge)
    }

    /// What decides a list's content for a caller: which kinds it reads in full, else its scopes.
    func renderingKey(_ query: TenantQuery, caller: Caller, policy: AccessPolicy) -> String {
        let organizations = policy.readsAll(caller, kind: .organization)
        let cloudTenants = policy.readsAll(caller, kind: .cloudTenant)
        let scopes = organizations ? "" : caller.scopes.sorted().joined(separator: ",")
        return "\(organizations ? 1 : 0)\(cloudTenants ? 1 : 0)|\(scopes)|\(query.product?.rawValue ?? "")|\(query.upstream ?? "")|\(query.q ?? "")|\(query.limit)|\(query.offset)"
    }

    func selectUpstreams(_ query: TenantQuery, caller: Caller, policy: AccessPolicy) -> [Upstream] {
        upstreams.filter { u in
            guard (query.product == nil || u.definition.product == query.product) && (query.upstream == nil || u.definition.name == query.upstream) else {
                return false
            }
            let kind: Tenant.Kind = u.definition.product == .vb365 ? .organization : .cloudTenant
            return policy.readsAll(caller, kind: kind)
                || (kind == .organization && caller.scopes.contains { $0.hasPrefix(u.definition.name + ".") })
        }
    }

    func gather(_ selected: [Upstream], bypass: Bool) async -> [SourceResult] {
        await withTaskGroup(of: SourceResult.self) { group in
            for (index, upstream) in selected.enumerated() {
                group.addTask { await self.fetchAll(upstream, index: index, bypass: bypass) }
            }
            var collected: [SourceResult] = []
            for await result in group { collected.append(result) }
            return collected.sorted { $0.index < $1.index }
        }
    }

    /// `X-Cache`, `Age` and `max-age` of a list from its sources'.
    func summarize(_ selected: [Upstream], statuses: [CacheStatus?], ages: [Int]) -> (CacheStatus, Int, Int) {
        let present = statuses.compactMap { $0 }
        let status: CacheStatus =
            present.contains(.stale) ? .stale : present.contains(.bypass) ? .bypass : present.contains(.miss) || present.isEmpty ? .miss : .hit
        let age = ages.max() ?? 0
        let maxAge = max(0, (selected.map { Int((listFreshness[$0.definition.name]?.ttl ?? .zero).components.seconds) }.min() ?? 0) - age)
        return (status, age, maxAge)
    }

    func assemble(_ query: TenantQuery, caller: Caller, policy: AccessPolicy, _ results: [SourceResult]) -> TenantList {
        var tenants = results.flatMap(\.tenants).filter { policy.canRead(caller, kind: $0.kind, id: $0.id) == .allow }
        if let q = query.q?.lowercased(), !q.isEmpty {
            tenants = tenants.filter { ($0.name ?? "").lowercased().contains(q) }
        }
        let ordered = Normalize.sorted(tenants)
        let page = Array(ordered.dropFirst(query.offset).prefix(query.limit))
        var list = TenantList(data: page, meta: .init(total: ordered.count, limit: query.limit, offset: query.offset, sources: results.map(\.source)))
        let statuses = results.map(\.status)
        let selected = upstreams.filter { u in results.contains { $0.source.upstream == u.definition.name } }
        (list.cacheStatus, list.age, list.maxAge) = summarize(selected, statuses: statuses, ages: results.map(\.age))
        return list
    }

    struct SourceResult: Sendable {
        var index: Int
        var tenants: [Tenant]
        var source: SourceStatus
        var status: CacheStatus?
        var age: Int
        /// The cache entry's time of storing: identifies the entry a rendering was made from.
        var storedAt: ContinuousClock.Instant?
    }

    func fetchAll(_ upstream: Upstream, index: Int, bypass: Bool) async -> SourceResult {
        let name = upstream.definition.name
        let product = upstream.definition.product
        do {
            let fetch: @Sendable () async throws -> CacheFill<CachedPayload> = {
                try self.checkThrottle(name)
                let (tenants, failure) = try await withTimeout(upstream.definition.options.totalTimeout, upstream: name) {
                    () async throws -> ([Tenant], (any Error)?) in
                    switch upstream.runtime {
                    case .vspc(_, let client):
                        return (try await client.tenants().map { Normalize.cloudTenant($0, upstream: name) }, nil)
                    case .vb365(let orgs):
                        let (tenants, failures) = await self.readOrganizations(name, orgs)
                        if tenants.isEmpty, let first = failures.first { throw first }
                        return (tenants, failures.first)
                    }
                }
                let fetchedAt = Self.now()
                let bytes = tenants.count * 1024
                // A partial answer (one organization's account failed) is served, not stored.
                return CacheFill(
                    value: .list(tenants, fetchedAt: fetchedAt, partialFailure: failure.map { ProblemSummary(GatewayError.upstream(name, $0)) }),
                    bytes: bytes, etag: "", tags: ["upstream:" + name], cacheable: failure == nil)
            }
            let answer: CacheAnswer<CachedPayload>
            answer = try await cache.value(for: "list|" + name, policy: listFreshness[name] ?? .init(ttl: .zero), bypass: bypass) {
                try await self.recordingThrottle(name, fetch)
            }
            guard case .list(let tenants, let fetchedAt, let partial) = answer.entry.value else { throw GatewayError.notFound("internal cache shape") }
            if answer.refreshError == nil, answer.status != .stale { markReachable(name, true) }
            let status: String
            let problem: ProblemSummary?
            if let refreshError = answer.refreshError {
                noteFailure(name, refreshError)
                status = "stale"
                problem = ProblemSummary(GatewayError.upstream(name, refreshError))
            } else if answer.status == .stale {
                status = "stale"
                problem = nil
            } else {
                status = partial == nil ? "ok" : "error"
                problem = partial
            }
            let source = SourceStatus(upstream: name, product: product, status: status, fetchedAt: fetchedAt, count: tenants.count, problem: problem)
            let stamp = answer.status == .hit && answer.refreshError == nil ? answer.entry.storedAt : nil
            return SourceResult(index: index, tenants: tenants, source: source, status: answer.status, age: answer.age, storedAt: stamp)
        } catch {
            noteFailure(name, error)
            let problem = GatewayError.upstream(name, error)
            logger.warning("upstream failed", metadata: ["upstream": "\(name)", "code": "\(problem.code)", "error": "\(problem.logDetail ?? problem.detail)"])
            let source = SourceStatus(upstream: name, product: product, status: "error", fetchedAt: Self.now(), count: 0, problem: ProblemSummary(problem))
            return SourceResult(index: index, tenants: [], source: source, status: nil, age: 0, storedAt: nil)
        }
    }

    // MARK: Upstream info

    public func upstreamInfo() async -> [UpstreamInfo] {
        var infos: [UpstreamInfo] = []
        for upstream in upstreams {
            let name = upstream.definition.name
            var states: [TokenBroker.State] = []
            for broker in brokers(of: name) { states.append(await broker.state) }
            let state: String
            if states.isEmpty {
                state = "none"
            } else if states.contains(.failed) {
                state = "failed"
            } else if states.allSatisfy({ $0 == .valid }) {
                state = "valid"
            } else {
                state = states.contains(.valid) ? "partial" : states[0].rawValue
            }
            infos.append(
                UpstreamInfo(
                    name: name, product: upstream.definition.product, baseURL: upstream.definition.baseURL,
                    accounts: brokers(of: name).count, tokenState: state, reachable: reachability.withLock { $0[name] }))
        }
        return infos
    }

    func markReachable(_ name: String, _ value: Bool) {
        reachability.withLock { $0[name] = value }
    }

    func noteFailure(_ name: String, _ error: any Error) {
        if error is UpstreamError { markReachable(name, false) } else if !(error is CancellationError) { markReachable(name, true) }
    }

    static func now() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date())
    }
}

/// Runs `operation`, or throws `upstream.timeout` for `upstream` once `limit` has passed
/// (cancelling the operation, and so its transfers).
func withTimeout<T: Sendable>(_ limit: Duration, upstream: String, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw UpstreamError(.timeout, "no complete answer from \(upstream) within \(limit)")
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw CancellationError() }
        return first
    }
}
