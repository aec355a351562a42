public import GatewayAccess
import Foundation
import HTTPTransport
public import ResponseCache
import TenantModel
import VeeamAPI
import GatewayObservability

/// A pass-through request located: the upstream, the route that allows it, the checked path, and
/// for the tenant form the organization (authorized as a tenant read is). Carried into the fill.
public final class PassThroughLocation: Sendable {
    let upstream: UpstreamClients.Upstream
    let route: PassThroughRoute
    let path: PassThroughPath
    /// The tenant form's organization; nil for the upstream form.
    public let organization: TenantLocation?
    let cacheKey: String
    let method: String
    /// A write's body, forwarded as it came.
    let body: [UInt8]?
    /// Not a read: never cached, never retried, audited.
    public var isWrite: Bool { method != "GET" }

    init(
        upstream: UpstreamClients.Upstream, route: PassThroughRoute, path: PassThroughPath, organization: TenantLocation?, method: String,
        redactionTag: String, body: [UInt8]?
    ) {
        self.body = body
        self.upstream = upstream
        self.route = route
        self.path = path
        self.organization = organization
        self.method = method
        self.cacheKey = CacheKeys.passThrough(upstream.definition.name, account: organization?.upstreamID ?? "account", path.canonical + redactionTag)
    }
}

/// Veeam reads passed through with the gateway's credentials (the organization's own session for
/// the tenant form, the upstream's account for the upstream form), under ``PassThroughPolicy``:
/// located and refused before any upstream call, cached per (upstream, account, path, query) in
/// the tenants' cache with the route's TTL, secrets removed before anything is stored or sent.
public final class PassThroughReads: Sendable {
    let clients: UpstreamClients
    let health: UpstreamHealth
    let reads: TenantReads
    public let policy: PassThroughPolicy
    /// `GET`s already located (valid ones only, at most 1,024 per thread shard: targets are
    /// caller input), by target as sent.
    let locations = ThreadShards { [String: PassThroughLocation]() }

    init(clients: UpstreamClients, health: UpstreamHealth, reads: TenantReads, policy: PassThroughPolicy) {
        self.clients = clients
        self.health = health
        self.reads = reads
        self.policy = policy
    }

    /// Where a pass-through target points, and the route that allows it: 400 for a malformed
    /// id or path, 404 for an upstream that is not configured, 403 naming the policy for a path
    /// no route allows. No caller involved, no upstream called.
    public func locate(_ target: PassThroughTarget) throws(GatewayError) -> PassThroughLocation {
        // A read seen before (on this thread) is the same location: nothing to take apart again.
        let memoKey = target.body == nil && target.method == "GET" ? target.target : nil
        if let memoKey, let known = locations.withCurrent({ $0[memoKey] }) { return known }
        guard let parts = PassThroughTarget.split(Substring(target.target)) else {
            throw GatewayError(.passThroughInvalidPath, detail: "The pass-through path is refused: it names no upstream path.")
        }
        let upstream: UpstreamClients.Upstream
        let organization: TenantLocation?
        switch parts.form {
        case .tenant:
            let location = try reads.locate(String(parts.name))
            guard location.kind == .organization else {
                throw GatewayError(
                    .passThroughNotAllowed, detail: "Only a VB365 organization is read through /v1/tenants/{id}/api; use /v1/upstreams/{name}/api for VSPC.")
            }
            upstream = location.upstream
            organization = location
        case .upstream:
            let name = String(parts.name)
            guard let found = clients.named(name) else { throw GatewayError(.routeNotFound, detail: "No upstream \(name).") }
            guard found.accountReads != nil else {
                throw GatewayError(
                    .passThroughNotAllowed, detail: "Upstream \(name) has no passThrough.account: its reads go through /v1/tenants/{id}/api with each organization's own session.")
            }
            upstream = found
            organization = nil
        }
        let form = parts.form
        let path = try PassThroughPath(rawPath: parts.rawPath, rawQuery: parts.rawQuery)
        guard let route = policy.route(form: form, upstream: upstream.name, product: upstream.definition.product, method: target.method, path: path) else {
            throw GatewayError(
                .passThroughNotAllowed,
                detail: "No route of the pass-through policy (passThrough.routes) allows \(target.method) \(path.path) on \(upstream.name) through the \(form.rawValue) form.")
        }
        let location = PassThroughLocation(
            upstream: upstream, route: route, path: path, organization: organization, method: target.method, redactionTag: policy.redactionTag,
            body: target.body)
        if let memoKey {
            locations.withCurrent { known in
                if known.count >= 1024 { known.removeAll(keepingCapacity: true) }
                known[memoKey] = location
            }
        }
        return location
    }

    /// The caller's decision: the tenant form as a read of the organization (403 naming roles, 404
    /// outside a scope), the upstream form by the route's roles; a write needs the route's roles
    /// in both forms.
    public func authorize(_ caller: Caller, at location: PassThroughLocation, policy access: AccessPolicy) throws(GatewayError) {
        if let organization = location.organization {
            try reads.authorize(caller, at: organization, policy: access)
            if !location.isWrite { return }
        }
        guard !caller.roles.isDisjoint(with: location.route.roles) else {
            throw GatewayError.forbidden(roles: location.route.roles.sorted(), what: "\(location.path.path) on \(location.upstream.name)")
        }
    }

    /// A fresh cached answer, or nil. Never waits.
    public func fresh(at location: PassThroughLocation) -> CachedBody? {
        let ttl = location.route.ttl
        return reads.cache.withFreshEntry(location.cacheKey) { entry, age -> CachedBody? in
            guard case .passThrough(let body) = entry.value else { return nil }
            return CachedBody(body: body, etag: entry.etag, age: age, maxAge: TenantReads.maxAge(ttl: ttl, age: age))
        }
    }

    /// The answer through the cache: the upstream read with the right session, its secrets removed.
    public func answer(at location: PassThroughLocation, bypassCache: Bool) async throws -> PassThroughAnswer {
        let upstream = location.upstream
        let name = upstream.name
        let base = upstream.definition.freshness
        let freshness = FreshnessPolicy(ttl: location.route.ttl, staleWhileRevalidate: base.staleWhileRevalidate, staleIfError: base.staleIfError)
        let extra = policy.redact
        var purgedBy: Set<String> = [CacheKeys.upstreamTag(name)]
        if let organization = location.organization { purgedBy.insert(CacheKeys.tenantTag(organization.tenantID)) }
        let tags = purgedBy
        do {
            let answer = try await reads.cached(
                location.cacheKey, of: upstream, policy: freshness, bypass: bypassCache,
                read: { [clients] in try await Self.read(location, clients: clients) },
                store: { response in
                    guard let body = SecretMembers.redacted(response, extra: extra) else {
                        throw VeeamAPIError(code: .badResponse, status: 200, upstreamMessage: "a pass-through answer that is not JSON")
                    }
                    return CachedPayload.passThroughFill(body: body, tags: tags)
                })
            if let refreshError = answer.refreshError { health.noteFailure(name, refreshError) } else { health.markReachable(name, true) }
            guard case .passThrough(let body) = answer.entry.value else { throw GatewayError.internalInvariant("pass-through entry of \(name)") }
            let cached = CachedBody(body: body, etag: answer.entry.etag, age: answer.age, maxAge: TenantReads.maxAge(ttl: location.route.ttl, age: answer.age))
            return PassThroughAnswer(body: cached, cacheStatus: answer.status)
        } catch let error as GatewayError {
            throw error
        } catch {
            health.noteFailure(name, error)
            throw GatewayError.upstream(name, error)
        }
    }

    /// A caller's write, as an operator's route allows it: sent once with the right session (never
    /// cached, never retried; the request id goes along, VSPC's idempotency key), its 2xx answer
    /// returned without secrets, and one audit line whatever happened (caller, route, upstream,
    /// status, request id; never the body).
    public func write(at location: PassThroughLocation, callerID: String, requestID: String) async throws -> PassThroughWriteAnswer {
        let name = location.upstream.name
        var outcome = "error"
        defer {
            clients.logger.notice(
                "audit: pass-through write",
                metadata: [
                    "caller": "\(callerID)", "method": "\(location.method)", "route": "\(location.route.pattern)", "path": "\(location.path.path)",
                    "upstream": "\(name)", "status": "\(outcome)", "request_id": "\(requestID)",
                ])
        }
        do {
            let response = try await UpstreamDeadline.within(location.upstream.definition.options.totalTimeout) {
                try await Self.send(location, clients: self.clients)
            }
            outcome = String(response.status)
            health.markReachable(name, true)
            switch response.status {
            case 200..<300:
                let body = response.body.isEmpty ? nil : SecretMembers.redacted(response.body, extra: policy.redact)
                if !response.body.isEmpty, body == nil {
                    throw VeeamAPIError(code: .badResponse, status: response.status, upstreamMessage: "a pass-through answer that is not JSON")
                }
                return PassThroughWriteAnswer(status: response.status, body: body)
            case 404:
                throw GatewayError(
                    .passThroughNotFound, detail: "Upstream \(name) has nothing at \(location.method) \(location.path.path).", upstream: name)
            default:
                throw VeeamAPIError.from(response)
            }
        } catch let error as GatewayError {
            throw error
        } catch {
            health.noteFailure(name, error)
            throw GatewayError.upstream(name, error)
        }
    }

    /// Sends a location's request (a read, or a write once) with the session its form names.
    /// Sends a location's request, and when VSPC queued it (202 with `Location:
    /// …/asyncActions/{id}`), follows the action to its result (``AsyncActions``), within the
    /// deadline the caller runs under.
    static func send(_ location: PassThroughLocation, clients: UpstreamClients, query asked: [(String, String)]? = nil) async throws -> UpstreamResponse {
        let response = try await sendOnce(location, clients: clients, query: asked)
        guard response.status == 202, case .vspc(_, let client) = location.upstream.runtime else { return response }
        return try await AsyncActions.follow(response, client: client, upstream: location.upstream.name)
    }

    static func sendOnce(_ location: PassThroughLocation, clients: UpstreamClients, query asked: [(String, String)]?) async throws -> UpstreamResponse {
        let upstream = location.upstream
        let segments = location.path.segments
        let query = asked ?? location.path.forwardedQuery
        let method = HTTPMethod(rawValue: location.method)
        switch upstream.runtime {
        case .vspc(_, let client):
            return location.isWrite ? try await client.write(method, segments, query: query, json: location.body) : try await client.read(segments, query: query)
        case .vb365(_, let resolver):
            let transport: any UpstreamTransport
            if let organization = location.organization {
                guard let account = try await clients.organizationAccount(upstream, id: organization.upstreamID) else {
                    throw GatewayError.notFound("No tenant \(organization.requested).")
                }
                transport = account.transport
            } else if let account = upstream.accountReads {
                transport = account.transport
            } else {
                throw GatewayError.internalInvariant("pass-through of \(upstream.name) without an account")
            }
            let client = VB365Client(transport: transport, baseURL: upstream.definition.baseURL, version: try await resolver.current())
            return location.isWrite ? try await client.write(method, segments, query: query, json: location.body) : try await client.read(segments, query: query)
        }
    }

    /// Reads the upstream: a 200's body (every page of it with `pages=all`); a 404 as nothing
    /// there; any other status as the product's error.
    static func read(_ location: PassThroughLocation, clients: UpstreamClients) async throws -> [UInt8] {
        if location.path.allPages { return try await PageWalk.readAll(location, clients: clients) }
        let response = try await send(location, clients: clients)
        return try body(of: response, location)
    }

    /// A read's 200 body; a 404 as nothing there; any other status as the product's error.
    static func body(of response: UpstreamResponse, _ location: PassThroughLocation) throws -> [UInt8] {
        let upstream = location.upstream
        switch response.status {
        case 200: return response.body
        case 404:
            throw GatewayError(
                .passThroughNotFound, detail: "Upstream \(upstream.name) has nothing at \(location.method) \(location.path.path).", upstream: upstream.name)
        default:
            throw VeeamAPIError.from(response)
        }
    }
}

/// A pass-through answer: its bytes and headers' facts, and how the cache served it.
public struct PassThroughAnswer: Sendable {
    public var body: CachedBody
    public var cacheStatus: CacheStatus?
}

/// What a write passed through answered: the upstream's 2xx status and its body without secrets.
public struct PassThroughWriteAnswer: Sendable {
    public var status: Int
    public var body: [UInt8]?
}
