import GatewaySecrets
public import GatewayAccess
import Crypto
public import HTTPTransport
import Foundation
public import ResponseCache
import Synchronization
public import TenantModel
import GatewayClock
import GatewayObservability
import VeeamAPI

/// What the gateway caches: normalized per-upstream results. A single tenant is stored with its
/// response body ready to send (role checks are yes/no for one tenant, so one body serves every
/// allowed caller); a list is stored as tenants, filtered per caller on every answer.
public enum CachedPayload: Sendable {
    /// A class: a hit reads the body out of the entry, and taking the entry out of the case is
    /// one retain, where matching a tenant held in the case copied each of its strings.
    case tenant(TenantEntry)
    case list([Tenant], fetchedAt: String, partialFailure: ProblemSummary?)
    /// A pass-through answer: the upstream's JSON without its secret members, ready to send.
    case passThrough(body: [UInt8])
    /// A VSPC upstream's customers and their drift, joined (not shared between replicas).
    case customers(CustomerJoin)
}

/// A single tenant as cached: the tenant, its answer's body ready to send, and when it was read.
public final class TenantEntry: Sendable {
    public let tenant: Tenant
    /// `{"data": tenant}` (``CachedPayload/tenantBody(_:)``).
    public let body: [UInt8]
    /// When the upstream was read, RFC 3339 UTC.
    public let fetchedAt: String

    public init(tenant: Tenant, body: [UInt8], fetchedAt: String) {
        self.tenant = tenant
        self.body = body
        self.fetchedAt = fetchedAt
    }
}

/// A single read's answer, with what the front end needs for ETag, X-Cache, Age, Cache-Control.
public struct TenantAnswer: Sendable {
    public var tenant: Tenant
    /// `{"data": tenant}`, ready to write.
    public var body: [UInt8]
    public var etag: String
    public var cacheStatus: CacheStatus?
    public var age: Int
    public var maxAge: Int
}

/// JSON as the gateway writes it: sorted keys (stable bytes, stable ETags), unescaped slashes.
public enum GatewayJSON {
    /// Our own values only (every member is a string, number, bool, null or array/object of
    /// them), so encoding does not fail; should it ever, the error is thrown, not hidden behind
    /// an empty object a caller would take for an answer.
    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return Array(try encoder.encode(value))
        } catch {
            throw GatewayError.internalInvariant("JSON encoding of \(T.self): \(error)")
        }
    }

    /// A strong ETag over the bytes (SHA-256, first 16 bytes, hex).
    public static func etag(_ bytes: [UInt8]) -> String {
        "\"" + Hex.lowercase(SHA256.hash(data: bytes).prefix(16)) + "\""
    }
}

/// A cached answer's bytes and what its headers need.
public struct CachedBody: Sendable {
    public var body: [UInt8]
    public var etag: String
    public var age: Int
    public var maxAge: Int

    public init(body: [UInt8], etag: String, age: Int, maxAge: Int) {
        self.body = body
        self.etag = etag
        self.age = age
        self.maxAge = maxAge
    }
}

/// A tenant id resolved against the configured upstreams (see ``TenantReads/locate(_:)``):
/// which upstream and which of its objects, and what kind of tenant it is. Carried from the
/// request's first decision to its fill, so nothing is resolved twice. A class: remembered per id
/// and handed along by reference.
public final class TenantLocation: Sendable {
    /// The upstream's name.
    let upstreamName: String
    /// The id of the object on that upstream (lower case).
    let upstreamID: String
    /// The gateway's id of the tenant (`{upstream}.{id}`, lower case).
    let tenantID: String
    let kind: Tenant.Kind
    /// The configured upstream the id names (of the service that located it).
    let upstream: UpstreamClients.Upstream
    /// The tenant's key in the cache (``CacheKeys/tenant(_:)``).
    let cacheKey: String
    /// The id as the caller wrote it (problem details quote it).
    public let requested: String
    /// The upstream's freshness for single tenants (its definition's).
    var freshness: FreshnessPolicy { upstream.definition.freshness }

    init(upstreamName: String, upstreamID: String, tenantID: String, kind: Tenant.Kind, upstream: UpstreamClients.Upstream, requested: String) {
        self.upstreamName = upstreamName
        self.upstreamID = upstreamID
        self.tenantID = tenantID
        self.kind = kind
        self.upstream = upstream
        self.cacheKey = CacheKeys.tenant(tenantID)
        self.requested = requested
    }
}

/// Single tenants, read through the cache: where an id points, who may read it, a fresh entry
/// without waiting, and the fill that reads the upstream (with the shared level between, when a
/// shared tier is configured). Lists fill their entries through the same ``cached(_:of:policy:bypass:read:store:)``.
public final class TenantReads: Sendable {
    let clients: UpstreamClients
    let health: UpstreamHealth
    /// Normalized per-upstream results: single tenants and upstreams' lists.
    let cache: ResponseCache<CachedPayload>
    /// The shared cache level behind the local cache, when a shared tier is configured.
    let sharedFills: SharedFills<CachedPayload>?
    /// Which customer each tenant belongs to, as the last customer joins found it.
    public let membership: CustomerMembership
    /// Tenant ids already resolved by ``locate(_:)`` (valid ones only, at most 1,024 per thread
    /// shard): each thread its own memo, so hits on several event loops do not contend.
    let locations = ThreadShards { [String: TenantLocation]() }

    init(
        clients: UpstreamClients, health: UpstreamHealth, cache: ResponseCache<CachedPayload>, sharedFills: SharedFills<CachedPayload>?,
        membership: CustomerMembership
    ) {
        self.clients = clients
        self.membership = membership
        self.health = health
        self.cache = cache
        self.sharedFills = sharedFills
    }

    /// The one read decision: a forbidden caller gets 403 naming the roles, a scoped caller asking
    /// outside its scope 404 (existence does not leak). A company's caller reads the tenants
    /// ``membership`` puts in its customer.
    public func authorize(_ caller: Caller, at location: TenantLocation, policy: AccessPolicy) throws(GatewayError) {
        switch policy.canRead(caller, kind: location.kind, id: location.tenantID, customers: { membership.customers(of: location.tenantID) }) {
        case .allow: return
        case .hidden: throw GatewayError.notFound("No tenant \(location.requested).")
        case .forbidden(let roles):
            throw GatewayError.forbidden(roles: roles, what: location.kind == .cloudTenant ? "a cloud tenant" : "an organization")
        }
    }

    /// Where a tenant id points: 400 for a malformed id, 404 for an upstream that is not
    /// configured; no caller involved. Valid ids are remembered (bounded: ids are caller
    /// input), so a hot id is parsed once per thread.
    public func locate(_ id: String) throws(GatewayError) -> TenantLocation {
        if let known = locations.withCurrent({ $0[id] }) { return known }
        guard let (name, upstreamID) = TenantID.parse(id) else {
            throw GatewayError.badRequest(
                .invalidID, "A tenant id is {upstream}.{uuid}: an upstream name of 1-32 characters [a-z0-9-], a dot, and a UUID.")
        }
        guard let upstream = clients.named(name) else {
            throw GatewayError.notFound("No tenant \(id).")
        }
        let location = TenantLocation(
            upstreamName: name, upstreamID: upstreamID, tenantID: TenantID.make(upstream: name, id: upstreamID),
            kind: upstream.kind, upstream: upstream, requested: id)
        locations.withCurrent { known in
            if known.count >= 1024 { known.removeAll(keepingCapacity: true) }
            known[id] = location
        }
        return location
    }

    /// A *fresh* cached answer for a located tenant, or nil (the fill must read it). Never calls
    /// an upstream, never waits; the caller is authorized before (``authorize(_:at:policy:)``).
    public func freshTenant(at location: TenantLocation) -> CachedBody? {
        let ttl = location.freshness.ttl
        return cache.withFreshEntry(location.cacheKey) { entry, age -> CachedBody? in
            guard case .tenant(let cached) = entry.value else { return nil }
            return CachedBody(body: cached.body, etag: entry.etag, age: age, maxAge: Self.maxAge(ttl: ttl, age: age))
        }
    }

    /// `Cache-Control: max-age` of an answer `age` seconds old under `ttl`: what is left of it.
    static func maxAge(ttl: Duration?, age: Int) -> Int {
        max(0, Int((ttl ?? .zero).wholeSeconds) - age)
    }

    /// One located tenant, through the cache (with `bypassCache`, read again and stored). The
    /// caller is authorized before: this is the fill of a request already decided.
    public func tenantAnswer(at location: TenantLocation, bypassCache: Bool = false) async throws -> TenantAnswer {
        let upstream = location.upstream
        let name = location.upstreamName
        let requested = location.requested
        let upstreamID = location.upstreamID
        do {
            let answer = try await cached(
                location.cacheKey, of: upstream, policy: location.freshness, bypass: bypassCache,
                read: { [clients] in try await clients.read(upstream, id: upstreamID) },
                store: { [membership] read in
                    guard var tenant = read else { throw GatewayError.notFound("No tenant \(requested).") }
                    tenant.customer = membership.customer(of: tenant.id)
                    return CachedPayload.tenantFill(tenant, body: CachedPayload.tenantBody(tenant), fetchedAt: CachedPayload.fetchedAtNow())
                })
            if let refreshError = answer.refreshError { health.noteFailure(name, refreshError) } else { health.markReachable(name, true) }
            guard case .tenant(let cached) = answer.entry.value else { throw GatewayError.notFound("No tenant \(requested).") }
            return TenantAnswer(
                tenant: cached.tenant, body: cached.body, etag: answer.entry.etag, cacheStatus: answer.status, age: answer.age,
                maxAge: Self.maxAge(ttl: location.freshness.ttl, age: answer.age))
        } catch let error as GatewayError {
            throw error
        } catch {
            health.noteFailure(name, error)
            throw GatewayError.upstream(name, error)
        }
    }

    /// The one way a cache entry of an upstream is filled, for single tenants and lists alike:
    /// `read` runs under the upstream's total timeout (its transfers go through the upstream's
    /// ``UpstreamStack``), and `store` turns what was read into the entry. With a shared tier, a
    /// local miss asks the shared level first, and one replica fills the key for all of them
    /// (``SharedFills``).
    func cached<Read: Sendable>(
        _ key: String, of upstream: UpstreamClients.Upstream, policy: FreshnessPolicy, bypass: Bool,
        read: @escaping @Sendable () async throws -> Read, store: @escaping @Sendable (Read) throws -> CacheFill<CachedPayload>
    ) async throws -> CacheAnswer<CachedPayload> {
        let timeout = upstream.definition.options.totalTimeout
        // One deadline for the whole read; the quiet period after a 429 is the stack's
        // (ThrottleTransport): a refused read throws, and stale-if-error may answer.
        let fill: @Sendable () async throws -> CacheFill<CachedPayload> = { try store(try await UpstreamDeadline.within(timeout, read)) }
        guard let sharedFills, policy.ttl > .zero else { return try await cache.value(for: key, policy: policy, bypass: bypass, fill: fill) }
        return try await cache.value(for: key, policy: policy, bypass: bypass) {
            // A claim outlives the fill it covers; waiting for another replica's fill lasts as
            // long as that fill may.
            try await sharedFills.fill(
                CacheKeys.shared(key, fingerprint: upstream.fingerprint), ttl: policy.ttl, claimLifetime: timeout + .seconds(2), waitBudget: timeout + .seconds(1), bypass: bypass, fill)
        }
    }

    /// Purges the shared level's entries in `scope` (so no replica refills from the old value
    /// there); true when Redis took it, or when there is no shared level.
    func purgeShared(_ scope: CacheKeys.Scope) async -> Bool {
        guard let level = sharedFills?.level else { return true }
        let fingerprints = Dictionary(uniqueKeysWithValues: clients.all.map { ($0.definition.name, $0.fingerprint) })
        let (keys, prefixes) = scope.shared(fingerprints: fingerprints)
        return await level.purge(keys: keys, prefixes: prefixes)
    }

    /// Purges this replica's entries in `scope`; returns how many went.
    func purgeLocal(_ scope: CacheKeys.Scope) -> Int {
        guard let tag = scope.tag else { return cache.purgeAll() }
        return cache.purge(tag: tag)
    }

    /// Waits until no cache fill or background refresh is running.
    public func settleCache() async {
        await cache.settle()
    }

    /// The cache's counters, for metrics.
    public var cacheStatistics: CacheStatistics { cache.statistics }
}

extension CachedPayload {
    /// Now, as an entry's `fetchedAt` shows it: RFC 3339 UTC with milliseconds (no formatter per fill).
    static func fetchedAtNow() -> String {
        StatusBoard.timestamp(Date())
    }

    /// `{"data": tenant}`, as a single tenant is answered (and cached, and shared).
    /// Written by ``TenantModel/Tenant/writeJSON(into:)``: the bytes `GatewayJSON` would write,
    /// without its cost on every miss.
    public static func tenantBody(_ tenant: Tenant) -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(1024)
        body.append(contentsOf: #"{"data":"#.utf8)
        tenant.writeJSON(into: &body)
        body.append(UInt8(ascii: "}"))
        return body
    }

    /// A single tenant's cache entry: its body ready to send, tagged for purges by upstream and id.
    public static func tenantFill(_ tenant: Tenant, body: [UInt8], fetchedAt: String) -> CacheFill<CachedPayload> {
        CacheFill(
            value: .tenant(TenantEntry(tenant: tenant, body: body, fetchedAt: fetchedAt)), bytes: body.count, etag: GatewayJSON.etag(body),
            tags: [CacheKeys.upstreamTag(tenant.source.upstream), CacheKeys.tenantTag(tenant.id)])
    }

    /// A pass-through entry: the answer's body without its secrets, tagged for purges.
    public static func passThroughFill(body: [UInt8], tags: Set<String>) -> CacheFill<CachedPayload> {
        CacheFill(value: .passThrough(body: body), bytes: body.count, etag: GatewayJSON.etag(body), tags: tags)
    }

    /// An upstream's list entry; a partial one (an account failed) is answered, never stored.
    public static func listFill(_ tenants: [Tenant], upstream: String, fetchedAt: String, partialFailure: ProblemSummary?) -> CacheFill<CachedPayload> {
        CacheFill(
            value: .list(tenants, fetchedAt: fetchedAt, partialFailure: partialFailure), bytes: tenants.count * 1024, etag: "",
            tags: [CacheKeys.upstreamTag(upstream)], cacheable: partialFailure == nil)
    }
}

/// What `DELETE /v1/cache` did.
public struct PurgeOutcome: Sendable {
    /// Entries removed from this replica's cache.
    public var purged: Int
    /// With a shared tier: whether Redis took the purge of the shared level and the message to
    /// the other replicas; nil without one.
    public var replicasTold: Bool?
}

/// A purge as replicas tell each other (`DELETE /v1/cache` on one reaches all): JSON on the
/// shared tier's purge channel. `origin` names the replica, so that it ignores its own.
public struct CachePurge: Codable, Sendable, Equatable {
    public var origin: String
    public var upstream: String?
    public var tenant: String?

    public init(origin: String, upstream: String?, tenant: String?) {
        self.origin = origin
        self.upstream = upstream
        self.tenant = tenant
    }

}
