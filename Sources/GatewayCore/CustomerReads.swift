public import GatewayAccess
import Foundation
public import ResponseCache
import Logging
import Synchronization
public import GatewayObservability
import TenantModel
import VeeamAPI
public import VeeamWire

/// `GET /v1/customers`, `/v1/customers/{id}` and `/v1/customers/drift`: each VSPC upstream's
/// companies joined with their cloud tenants and their VB365 organizations (``CustomerJoin``),
/// one cache entry per VSPC upstream (its list freshness; single flight), partial failures per
/// source.
public final class CustomerReads: Sendable {
    let clients: UpstreamClients
    let health: UpstreamHealth
    let reads: TenantReads
    let lists: TenantLists

    /// VB365 upstream → VSPC upstream → which of that VSPC's servers it is, as last found.
    private let matches = Mutex<[String: [String: VSPCServerMatch.Found]]>([:])
    /// VSPC upstream → its drift as last joined, for the status page (which never joins itself:
    /// the page costs the Veeam servers nothing).
    private let lastDrift = Mutex<[String: StatusReport.CustomerDriftCount]>([:])

    /// Each VSPC upstream's drift as last joined.
    public var driftCounts: [StatusReport.CustomerDriftCount] {
        lastDrift.withLock { all in all.keys.sorted().compactMap { all[$0] } }
    }

    init(clients: UpstreamClients, health: UpstreamHealth, reads: TenantReads, lists: TenantLists) {
        self.clients = clients
        self.health = health
        self.reads = reads
        self.lists = lists
    }

    /// Finds, at start and after a reload, which VB365 server of each VSPC upstream every VB365
    /// upstream is, and logs it (an ambiguous or missing match as a warning). A VSPC that does not
    /// answer is asked again by the next customer read.
    public func prepare() async {
        for vspc in clients.all where vspc.definition.product == .vspc {
            guard case .vspc(_, let client) = vspc.runtime, let servers = try? await client.vb365Servers() else { continue }
            note(vspc: vspc.name, servers: servers)
        }
    }

    /// Records (and logs when it changed) which of `servers` each VB365 upstream is.
    @discardableResult
    func note(vspc: String, servers: [VSPCVb365Server]) -> [String: VSPCServerMatch.Found] {
        var found: [String: VSPCServerMatch.Found] = [:]
        for vb365 in clients.all where vb365.definition.product == .vb365 {
            let match = VSPCServerMatch.server(of: vb365.definition, vspc: vspc, among: servers)
            found[vb365.name] = match
            let previous = matches.withLock { all -> VSPCServerMatch.Found? in
                defer { all[vb365.name, default: [:]][vspc] = match }
                return all[vb365.name]?[vspc]
            }
            guard previous != match else { continue }
            let metadata: Logger.Metadata = ["upstream": "\(vb365.name)", "vspc": "\(vspc)", "server": "\(match.uid ?? "-")", "how": "\(match.how)"]
            if match.uid == nil {
                clients.logger.warning("a VB365 upstream is none of a VSPC's VB365 servers: its organizations join customers by mapping only", metadata: metadata)
            } else {
                clients.logger.info("a VB365 upstream is one of a VSPC's VB365 servers", metadata: metadata)
            }
        }
        return found
    }

    /// What `/v1/upstreams` shows for a VB365 upstream: the last matches found, per VSPC upstream.
    func serverLinks(of vb365: String) -> [VSPCServerLink]? {
        matches.withLock { $0[vb365] }.map { found in
            found.keys.sorted().compactMap { vspc in found[vspc].map { VSPCServerLink(upstream: vspc, serverUid: $0.uid, how: $0.how) } }
        }
    }

    /// Who reads customers: the roles seed 004 gives for reading cloud tenants (docs/security.md
    /// says why, for companies, by inference).
    public static let readers = Role.customerReaders

    /// 403 unless the caller holds one of ``readers`` or is scoped (to a company, or to an
    /// organization: it then sees only what its scopes name, ``visible(_:to:)``). The drift
    /// report is for ``readers`` only.
    public func authorize(_ caller: Caller, drift: Bool = false) throws(GatewayError) {
        if !caller.roles.isDisjoint(with: Self.readers) { return }
        if !drift, !caller.scopes.isEmpty { return }
        throw GatewayError.forbidden(roles: Self.readers.sorted(), what: drift ? "the customers' drift" : "customers")
    }

    /// What `caller` may see of `customer`: all of it for ``readers``; for a caller scoped to the
    /// company, all of it; for one scoped to an organization of it, the customer with only that
    /// organization (no cloud tenants, no other organization); otherwise nothing.
    static func visible(_ customer: Customer, to caller: Caller) -> Customer? {
        if !caller.roles.isDisjoint(with: readers) || caller.scopes.contains(Scope.company(customer.id)) { return customer }
        let own = customer.organizations.filter { $0.tenant.map { caller.scopes.contains($0) } ?? false }
        guard !own.isEmpty else { return nil }
        var narrowed = customer
        narrowed.organizations = own
        narrowed.cloudTenants = []
        return narrowed
    }

    /// One VSPC upstream's join, or why it failed.
    struct SourceJoin: Sendable {
        var upstream: String
        var join: CustomerJoin?
        var source: SourceStatus
    }

    /// Every VSPC upstream's join (or `only`'s), through the cache, at once.
    func joins(only: String? = nil, bypass: Bool) async -> [SourceJoin] {
        let selected = clients.all.filter { $0.definition.product == .vspc && (only == nil || $0.name == only) }
        return await fanOut(selected) { upstream in await self.join(upstream, bypass: bypass) }
    }

    /// Every VSPC upstream joined again now (the lists as cached: the change feed's watcher has
    /// just read them), by upstream; one that failed is absent.
    public func rejoin() async -> [String: CustomerJoin] {
        let selected = clients.all.filter { $0.definition.product == .vspc }
        let joined = await fanOut(selected) { upstream in await self.join(upstream, bypass: true, listsBypass: false) }
        var all: [String: CustomerJoin] = [:]
        for source in joined { if let join = source.join { all[source.upstream] = join } }
        return all
    }

    func join(_ upstream: UpstreamClients.Upstream, bypass: Bool, listsBypass: Bool? = nil) async -> SourceJoin {
        let name = upstream.name
        guard case .vspc(_, let client) = upstream.runtime else {
            return SourceJoin(upstream: name, join: nil, source: SourceStatus(upstream: name, product: .vspc, status: .error, fetchedAt: CachedPayload.fetchedAtNow(), count: 0, problem: nil))
        }
        do {
            let answer = try await reads.cached(
                CacheKeys.customers(name), of: upstream, policy: upstream.definition.listFreshness, bypass: bypass,
                read: { [self] in try await self.sources(upstream, client: client, bypass: listsBypass ?? bypass) },
                store: { sources in
                    let join = CustomerJoin(sources)
                    return CacheFill(
                        value: .customers(join), bytes: (join.customers.count + sources.organizations.count + 1) * 1024, etag: "",
                        tags: [CacheKeys.upstreamTag(name)])
                })
            guard case .customers(let join) = answer.entry.value else { throw GatewayError.internalInvariant("customer entry of \(name)") }
            let drift = join.drift
            let counts = StatusReport.CustomerDriftCount(
                upstream: name, count: drift.count,
                byKind: drift.countsByKind,
                joinedAt: CachedPayload.fetchedAtNow())
            lastDrift.withLock { all in if answer.status != .hit || all[name] == nil { all[name] = counts } }
            if answer.status != .hit || !reads.membership.isKnown(for: [name]) { noteMembers(of: name, join) }
            if let refreshError = answer.refreshError { health.noteFailure(name, refreshError) } else { health.markReachable(name, true) }
            return SourceJoin(
                upstream: name, join: join,
                source: SourceStatus(upstream: name, product: .vspc, status: answer.status == .stale ? .stale : .ok, fetchedAt: CachedPayload.fetchedAtNow(), count: join.customers.count, problem: nil))
        } catch {
            health.noteFailure(name, error)
            let problem = GatewayError.upstream(name, error)
            return SourceJoin(
                upstream: name, join: nil,
                source: SourceStatus(upstream: name, product: .vspc, status: .error, fetchedAt: CachedPayload.fetchedAtNow(), count: 0, problem: ProblemSummary(problem)))
        }
    }

    /// Records a join's members; a tenant whose customer changed loses its cached answer (its
    /// `links.customer` is made at fill) and lists their kept renderings.
    func noteMembers(of vspc: String, _ join: CustomerJoin) {
        let changed = reads.membership.record(vspc: vspc, join)
        guard !changed.isEmpty else { return }
        for tenant in changed { _ = reads.purgeLocal(.tenant(tenant)) }
        lists.forgetRenderings()
    }

    /// Joins every VSPC upstream not joined yet when `caller` is scoped to a company: what its
    /// tenants are is known from the join only. Anyone else never waits for a join here.
    public func ensureMembership(for caller: Caller) async {
        guard awaitsMembership(caller) else { return }
        _ = await joins(bypass: false)
    }

    /// Whether ``ensureMembership(for:)`` would join.
    public func awaitsMembership(_ caller: Caller) -> Bool {
        caller.hasCompanyScope && !reads.membership.isKnown(for: clients.all.filter { $0.definition.product == .vspc }.map(\.name))
    }

    /// What the join of one VSPC upstream reads: its four collections, its cloud tenants (the
    /// tenants' own cache entry), and each VB365 upstream's organizations and which VSPC server it is.
    func sources(_ upstream: UpstreamClients.Upstream, client: VSPCClient, bypass: Bool) async throws -> CustomerSources {
        async let companies = client.companies()
        async let servers = client.vb365Servers()
        async let organizations = client.vb365Organizations()
        async let mappings = client.companyMappings()
        let tenants = await lists.fetchAll(upstream, index: 0, bypass: bypass)
        if tenants.source.status == .error, let problem = tenants.source.problem {
            throw GatewayError(.upstreamFailed, detail: problem.detail, upstream: upstream.name)
        }
        let knownServers = try await servers
        let found = note(vspc: upstream.name, servers: knownServers)
        var vb365: [JoinedVB365Upstream] = []
        for other in clients.all where other.definition.product == .vb365 {
            let read = await lists.fetchAll(other, index: 0, bypass: bypass)
            vb365.append(
                JoinedVB365Upstream(name: other.name, serverUid: found[other.name]?.uid, organizations: read.source.status == .error ? nil : read.tenants))
        }
        return CustomerSources(
            vspcUpstream: upstream.name, companies: try await companies, tenants: tenants.tenants, servers: knownServers,
            organizations: try await organizations, mappings: try await mappings, vb365: vb365)
    }

    /// `GET /v1/customers`: every VSPC upstream's customers, filtered (`q` on the name,
    /// `upstream`), sorted by name, one page; `meta.sources` says how each VSPC upstream fared.
    public func list(_ query: TenantQuery, caller: Caller, bypass: Bool) async throws -> [UInt8] {
        var joined = await joins(only: query.upstream, bypass: bypass)
        let readsAll = !caller.roles.isDisjoint(with: Self.readers)
        var parts: [[Customer]] = []
        for index in joined.indices {
            // Each source counts what this caller sees of it: a scoped caller learns nothing of the others.
            let customers = joined[index].join?.customers ?? []
            let visible = readsAll ? customers : customers.compactMap { Self.visible($0, to: caller) }
            joined[index].source.count = visible.count
            parts.append(visible)
        }
        // Each join is in list order already: only several of them are sorted together.
        var all = parts.count == 1 ? parts[0] : parts.flatMap { $0 }.sorted { $0.precedes($1) }
        if let q = query.q?.lowercased(), !q.isEmpty { all = all.filter { ($0.name ?? "").lowercased().contains(q) } }
        let page = Array(all.dropFirst(query.offset).prefix(query.limit))
        return try GatewayJSON.encode(
            CustomerList(data: page, meta: .init(total: all.count, limit: query.limit, offset: query.offset, sources: joined.map(\.source))))
    }

    /// `GET /v1/customers/{id}`: 400 for a malformed id, 404 for an unknown one.
    public func customer(_ id: String, caller: Caller, bypass: Bool) async throws -> [UInt8] {
        guard let (upstream, _) = TenantID.parse(id) else {
            throw GatewayError.badRequest(.invalidID, "A customer id is {vspc upstream}.{company uuid}.")
        }
        guard clients.named(upstream)?.definition.product == .vspc else { throw GatewayError.notFound("No customer \(id).") }
        guard let source = await joins(only: upstream, bypass: bypass).first else { throw GatewayError.notFound("No customer \(id).") }
        guard let join = source.join else {
            throw GatewayError(.upstreamFailed, detail: source.source.problem?.detail ?? "Upstream \(upstream) failed.", upstream: upstream)
        }
        // Another customer than a scoped caller's is absent to it (existence does not leak).
        guard let found = join.customer(id: id.lowercased()), let customer = Self.visible(found, to: caller) else {
            throw GatewayError.notFound("No customer \(id).")
        }
        return try GatewayJSON.encode(CustomerAnswer(data: customer))
    }

    /// `GET /v1/customers/drift`: each VSPC upstream's drift, with its counts.
    public func drift(bypass: Bool) async throws -> [UInt8] {
        let joined = await joins(bypass: bypass)
        let reports = joined.map { source in
            DriftReport(upstream: source.upstream, count: source.join?.drift.count, drift: source.join?.drift, source: source.source)
        }
        return try GatewayJSON.encode(DriftAnswer(data: reports))
    }

    struct CustomerList: Encodable {
        var data: [Customer]
        var meta: Meta
        struct Meta: Encodable {
            var total: Int
            var limit: Int
            var offset: Int
            var sources: [SourceStatus]
        }
    }

    struct CustomerAnswer: Encodable {
        var data: Customer
    }

    struct DriftReport: Encodable {
        var upstream: String
        var count: Int?
        var drift: CustomerDrift?
        var source: SourceStatus
    }

    struct DriftAnswer: Encodable {
        var data: [DriftReport]
    }
}

/// Which of a VSPC's VB365 servers one of the gateway's VB365 upstreams is: the configured
/// `vspcServer` when it names this VSPC, else the one server whose name is the upstream's host
/// (none, or several, is reported, never guessed).
public enum VSPCServerMatch {
    public struct Found: Sendable, Equatable {
        public var uid: String?
        /// How it was found, or why not: `configured`, `host`, `no server named {host}`,
        /// `{n} servers named {host}`.
        public var how: String
    }

    public static func server(of vb365: UpstreamDefinition, vspc: String, among servers: [VSPCVb365Server]) -> Found {
        if let configured = vb365.vspcServer, configured.upstream == vspc { return Found(uid: configured.serverUid.lowercased(), how: "configured") }
        let host = URLComponents(string: vb365.baseURL)?.host?.lowercased() ?? ""
        let named = servers.filter { ($0.name ?? "").lowercased() == host }
        switch named.count {
        case 1: return Found(uid: named[0].instanceUid.lowercased(), how: "host")
        case 0: return Found(uid: nil, how: "no server named \(host)")
        default: return Found(uid: nil, how: "\(named.count) servers named \(host)")
        }
    }
}
