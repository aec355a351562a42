public import GatewayAccess
import Foundation
public import ResponseCache
public import Logging
import GatewayObservability
public import TenantModel
import VeeamWire

/// `GET /v1/tenants`: every upstream at once, partial results, and kept renderings. Each
/// upstream's list is a cache entry filled through ``TenantReads/cached(_:of:policy:bypass:read:store:)``;
/// what a caller may see of them, and its pages as bytes, are kept beside the cache.
public final class TenantLists: Sendable {
    let clients: UpstreamClients
    let health: UpstreamHealth
    let reads: TenantReads
    let logger: Logger
    /// Rendered list answers, reused while their sources are unchanged (a quarter of the cache's bound).
    let renderings: ResponseCache<RenderedList>
    /// What a caller may see of the lists, filtered and sorted, whatever the page: reused by every
    /// page of it while its sources are unchanged (another eighth of the cache's bound).
    let views: ResponseCache<ListView>
    /// Each upstream's freshness for its list.
    let listFreshness: [String: FreshnessPolicy]

    init(clients: UpstreamClients, health: UpstreamHealth, reads: TenantReads, logger: Logger) {
        self.clients = clients
        self.health = health
        self.reads = reads
        self.logger = logger
        let cache = reads.cache
        self.renderings = ResponseCache(maxBytes: cache.maxBytes / 4, maxEntryShare: 0.5, clock: cache.clock)
        self.views = ResponseCache(maxBytes: cache.maxBytes / 8, maxEntryShare: 0.5, clock: cache.clock)
        self.listFreshness = Dictionary(uniqueKeysWithValues: clients.all.map { ($0.definition.name, $0.definition.listFreshness) })
    }

    /// Forgets every kept view and rendering (a purge of lists: they are made again from the cache).
    func forgetRenderings() {
        renderings.purgeAll()
        views.purgeAll()
    }

    /// `GET /v1/tenants` as bytes ready to send: every upstream at once, each within its own
    /// timeout; whatever came back, plus `meta.sources`. One dead or slow upstream never fails or
    /// stalls the list. Only what `caller` may read is fetched and returned: an upstream none of
    /// whose tenants the caller may see is not asked at all. The rendering (filter, sort, page,
    /// JSON) is kept per (what the caller may see, query) and reused while every source it came
    /// from is the same fresh cache entry: a hot list costs a lookup, not a re-encoding.
    public func listAnswer(_ query: TenantQuery, caller: Caller, policy: AccessPolicy, bypassCache: Bool = false) async throws -> ListAnswer {
        let selected = selectUpstreams(query, caller: caller, policy: policy)
        let results = await gather(selected, bypass: bypassCache)
        let (status, age, maxAge) = summarize(selected, statuses: results.map(\.status), ages: results.map(\.age))
        let key = renderingKey(query, caller: caller, policy: policy)
        let stamps = results.map(\.storedAt)
        if status == .hit, let rendered = renderings.peek(key, countingHit: false)?.entry.value, rendered.stamps == stamps {
            return ListAnswer(body: rendered.body, etag: rendered.etag, cacheStatus: status, age: age, maxAge: maxAge)
        }
        // Views and renderings are kept only when made from fresh cache entries, each known by its stamp.
        let keep = status == .hit && stamps.allSatisfy { $0 != nil }
        let viewKey = viewKey(query, caller: caller, policy: policy)
        let view: ListView
        if status == .hit, let kept = views.peek(viewKey, countingHit: false)?.entry.value, kept.stamps == stamps {
            view = kept
        } else {
            view = makeView(query, caller: caller, policy: policy, results, stamps: stamps)
            if keep {
                // The array's own storage (a tenant's strings are shared with the cache entry).
                views.store(viewKey, value: view, bytes: view.tenants.count * MemoryLayout<Tenant>.stride + 1024, etag: "", policy: .init(ttl: .seconds(3600)))
            }
        }
        let body = try GatewayJSON.encode(page(view, query))
        let etag = GatewayJSON.etag(body)
        if keep {
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
            guard let answer = reads.cache.peek(CacheKeys.list(upstream.definition.name), countingHit: false) else { return nil }
            stamps.append(answer.entry.storedAt)
            ages.append(answer.age)
        }
        guard let rendered = renderings.peek(renderingKey(query, caller: caller, policy: policy), countingHit: false)?.entry.value,
            rendered.stamps == stamps
        else { return nil }
        reads.cache.recordHits(selected.count)
        let (status, age, maxAge) = summarize(selected, statuses: selected.map { _ in .hit }, ages: ages)
        return ListAnswer(body: rendered.body, etag: rendered.etag, cacheStatus: status, age: age, maxAge: maxAge)
    }

    /// What decides a list's content for a caller: which kinds it reads in full, else its scopes.
    func renderingKey(_ query: TenantQuery, caller: Caller, policy: AccessPolicy) -> String {
        viewKey(query, caller: caller, policy: policy) + "|\(query.limit)|\(query.offset)"
    }

    /// What decides the tenants of a list, whatever the page: which kinds the caller reads in
    /// full, else its scopes; the filters.
    func viewKey(_ query: TenantQuery, caller: Caller, policy: AccessPolicy) -> String {
        let organizations = policy.readsAll(caller, kind: .organization)
        let cloudTenants = policy.readsAll(caller, kind: .cloudTenant)
        let scopes = organizations ? "" : caller.scopes.sorted().joined(separator: ",")
        return "\(organizations ? 1 : 0)\(cloudTenants ? 1 : 0)|\(scopes)|\(query.product?.rawValue ?? "")|\(query.upstream ?? "")|\(query.q ?? "")"
    }

    func selectUpstreams(_ query: TenantQuery, caller: Caller, policy: AccessPolicy) -> [UpstreamClients.Upstream] {
        // A company's caller reads the upstreams its customers' tenants are on.
        let companyTenants = caller.hasCompanyScope ? reads.membership.tenants(of: caller.scopes.compactMap(Scope.customer(of:))) : []
        return clients.all.filter { u in
            guard (query.product == nil || u.definition.product == query.product) && (query.upstream == nil || u.definition.name == query.upstream) else {
                return false
            }
            let kind = u.kind
            let prefix = u.definition.name + "."
            return policy.readsAll(caller, kind: kind)
                || (kind == .organization && caller.scopes.contains { $0.hasPrefix(prefix) })
                || companyTenants.contains { $0.hasPrefix(prefix) }
        }
    }

    func gather(_ selected: [UpstreamClients.Upstream], bypass: Bool) async -> [SourceResult] {
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
    func summarize(_ selected: [UpstreamClients.Upstream], statuses: [CacheStatus?], ages: [Int]) -> (CacheStatus, Int, Int) {
        let present = statuses.compactMap { $0 }
        let status: CacheStatus =
            present.contains(.stale) ? .stale : present.contains(.bypass) ? .bypass : present.contains(.miss) || present.isEmpty ? .miss : .hit
        let age = ages.max() ?? 0
        let maxAge = selected.map { TenantReads.maxAge(ttl: listFreshness[$0.definition.name]?.ttl, age: age) }.min() ?? 0
        return (status, age, maxAge)
    }

    /// What `caller` may see of `results`, filtered by `q` and sorted.
    func makeView(_ query: TenantQuery, caller: Caller, policy: AccessPolicy, _ results: [SourceResult], stamps: [ContinuousClock.Instant?]) -> ListView {
        var tenants: [Tenant] = []
        var sources: [SourceStatus] = []
        let customers = reads.membership.table()
        for result in results {
            let visible = result.tenants.filter { tenant in
                policy.canRead(caller, kind: tenant.kind, id: tenant.id, customers: { customers[tenant.id] ?? [] }) == .allow
            }
            tenants += visible
            sources.append(Self.source(result, visible: visible, caller: caller, policy: policy, kind: result.source.product.tenantKind))
        }
        if let q = query.q?.lowercased(), !q.isEmpty {
            tenants = tenants.filter { ($0.name ?? "").lowercased().contains(q) }
        }
        CustomerMembership.link(&tenants, using: customers)
        return ListView(stamps: stamps, tenants: Normalize.sorted(tenants), sources: sources)
    }

    /// One page of a view, as `GET /v1/tenants` answers it.
    func page(_ view: ListView, _ query: TenantQuery) -> TenantList {
        let page = Array(view.tenants.dropFirst(query.offset).prefix(query.limit))
        return TenantList(data: page, meta: .init(total: view.tenants.count, limit: query.limit, offset: query.offset, sources: view.sources))
    }

    /// A source's entry as this caller may see it: `count` is what the caller can read of it, and
    /// a caller who reads only its scopes hears of a partial failure (another organization's
    /// account failing) only when one of its own organizations is missing. So a scoped caller
    /// learns neither how many other organizations exist nor that their accounts fail.
    static func source(_ result: SourceResult, visible: [Tenant], caller: Caller, policy: AccessPolicy, kind: Tenant.Kind) -> SourceStatus {
        var source = result.source
        source.count = visible.count
        guard !policy.readsAll(caller, kind: kind), source.status == .error, !result.tenants.isEmpty else { return source }
        let own = caller.scopes.filter { $0.hasPrefix(source.upstream + ".") }
        let missing = own.contains { id in !visible.contains { $0.id == id } }
        if !missing {
            source.status = .ok
            source.problem = nil
        }
        return source
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

    /// What the change feed's watcher reads of one upstream: its whole list read again now (which
    /// refreshes its cache entry), and how complete it is. Customer links are not set here: the
    /// watcher joins the customers after reading every list, then links.
    public struct WatchedList: Sendable {
        public enum Outcome: Sendable {
            case complete
            /// Read in part (an organization's account failed): the problem's detail.
            case partial(String)
            /// Not read: the problem's detail.
            case failed(String)
        }
        public var tenants: [Tenant]
        public var outcome: Outcome
    }

    /// Reads `name`'s whole list again (nil for an upstream that is not configured).
    public func watch(_ name: String) async -> WatchedList? {
        guard let upstream = clients.named(name) else { return nil }
        let result = await fetchAll(upstream, index: 0, bypass: true)
        let detail = result.source.problem?.detail ?? "\(name) failed"
        let outcome: WatchedList.Outcome
        switch result.source.status {
        case .ok: outcome = .complete
        case .stale: outcome = result.source.problem == nil ? .complete : .failed(detail)
        case .error: outcome = result.status == nil ? .failed(detail) : .partial(detail)
        }
        return WatchedList(tenants: result.tenants, outcome: outcome)
    }

    func fetchAll(_ upstream: UpstreamClients.Upstream, index: Int, bypass: Bool) async -> SourceResult {
        let name = upstream.definition.name
        let product = upstream.definition.product
        do {
            let answer = try await reads.cached(
                CacheKeys.list(name), of: upstream, policy: listFreshness[name] ?? .init(ttl: .zero), bypass: bypass,
                read: { [clients] in try await clients.readAll(upstream) },
                store: { fetched in
                    // A partial answer (one organization's account failed) is served, not stored.
                    let failure = fetched.partialFailure.map { ProblemSummary(GatewayError.upstream(name, $0)) }
                    return CachedPayload.listFill(fetched.tenants, upstream: name, fetchedAt: CachedPayload.fetchedAtNow(), partialFailure: failure)
                })
            guard case .list(let tenants, let fetchedAt, let partial) = answer.entry.value else { throw GatewayError.internalInvariant("list cache entry of \(name) holds no list") }
            if answer.refreshError == nil, answer.status != .stale { health.markReachable(name, true) }
            let status: SourceStatus.State
            let problem: ProblemSummary?
            if let refreshError = answer.refreshError {
                health.noteFailure(name, refreshError)
                status = .stale
                problem = ProblemSummary(GatewayError.upstream(name, refreshError))
            } else if answer.status == .stale {
                status = .stale
                problem = nil
            } else {
                status = partial == nil ? .ok : .error
                problem = partial
            }
            let source = SourceStatus(upstream: name, product: product, status: status, fetchedAt: fetchedAt, count: tenants.count, problem: problem)
            let stamp = answer.status == .hit && answer.refreshError == nil ? answer.entry.storedAt : nil
            return SourceResult(index: index, tenants: tenants, source: source, status: answer.status, age: answer.age, storedAt: stamp)
        } catch {
            health.noteFailure(name, error)
            let problem = GatewayError.upstream(name, error)
            logger.warning("upstream failed", metadata: ["upstream": "\(name)", "code": "\(problem.code)", "error": "\(problem.logDetail ?? problem.detail)"])
            let source = SourceStatus(upstream: name, product: product, status: .error, fetchedAt: CachedPayload.fetchedAtNow(), count: 0, problem: ProblemSummary(problem))
            return SourceResult(index: index, tenants: [], source: source, status: nil, age: 0, storedAt: nil)
        }
    }
}
