public import GatewayAccess
import Foundation
import HTTPTransport
public import ResponseCache
import TenantModel
import VeeamAPI
import GatewayObservability

/// What a pass-through request names, before anything is checked: its target as sent
/// (`/v1/tenants/{id}/api/{path}` or `/v1/upstreams/{name}/api/{path}`, with its query), taken
/// apart only when ``PassThroughReads/locate(_:)`` has not seen it before.
public struct PassThroughTarget: Sendable {
    /// Whose session reads it.
    public enum Via: Sendable {
        /// `GET /v1/tenants/{id}/api/…`: the organization's own, the id as written.
        case tenant(String)
        /// `GET /v1/upstreams/{name}/api/…`: the upstream's pass-through account.
        case upstream(String)
    }

    /// A target taken apart.
    struct Parts {
        var via: Via
        /// The path after `/api`, as sent (still percent-encoded, if it was).
        var rawPath: Substring
        /// The query, without `?`.
        var rawQuery: Substring?
    }

    /// The request target as sent: path and query.
    public var target: String
    /// The method, upper case.
    public var method: String
    /// A write's body (JSON), when it has one.
    public var body: [UInt8]?

    public init(target: String, method: String, body: [UInt8]? = nil) {
        self.target = target
        self.method = method
        self.body = body
    }

    /// Whether a request target names a pass-through (what ``split(_:)`` takes apart, checked
    /// without taking it apart: the hot path asks this of every such head). Both front ends ask
    /// this, so they agree.
    public static func names(_ target: Substring) -> Bool {
        var bytes = target.utf8[...]
        let end = bytes.firstIndex(of: UInt8(ascii: "?")) ?? bytes.endIndex
        bytes = bytes[..<end]
        for prefix in ["/v1/tenants/", "/v1/upstreams/"] where bytes.starts(with: prefix.utf8) {
            let rest = bytes.dropFirst(prefix.utf8.count)
            guard let slash = rest.firstIndex(of: UInt8(ascii: "/")), slash != rest.startIndex else { return false }
            return rest[rest.index(after: slash)...].starts(with: "api/".utf8)
        }
        return false
    }

    static func split(_ target: Substring) -> Parts? {
        let path: Substring
        var query: Substring?
        if let mark = target.firstIndex(of: "?") {
            path = target[..<mark]
            query = target[target.index(after: mark)...]
        } else {
            path = target
        }
        let parts = path.split(separator: "/", maxSplits: 4, omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0].isEmpty, parts[1] == "v1", !parts[3].isEmpty, parts[4].hasPrefix("api/") else { return nil }
        let via: Via
        switch parts[2] {
        case "tenants": via = .tenant(String(parts[3]))
        case "upstreams": via = .upstream(String(parts[3]))
        default: return nil
        }
        return Parts(via: via, rawPath: parts[4].dropFirst(3), rawQuery: query)
    }
}

/// A pass-through request located: the upstream, the route that allows it, the checked path, and
/// for the tenant form the organization (authorized as a tenant read is). Carried into the fill.
public final class PassThroughLocation: Sendable {
    let upstream: UpstreamClients.Upstream
    let route: PassThroughRoute
    let path: PassThroughPath
    /// The tenant form's organization; nil for the upstream form.
    let organization: TenantLocation?
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
        let form: PassThroughRoute.Form
        switch parts.via {
        case .tenant(let id):
            let location = try reads.locate(id)
            guard location.kind == .organization else {
                throw GatewayError(
                    .passThroughNotAllowed, detail: "Only a VB365 organization is read through /v1/tenants/{id}/api; use /v1/upstreams/{name}/api for VSPC.")
            }
            upstream = location.upstream
            organization = location
            form = .tenant
        case .upstream(let name):
            guard let found = clients.named(name) else { throw GatewayError(.routeNotFound, detail: "No upstream \(name).") }
            guard found.accountReads != nil else {
                throw GatewayError(
                    .passThroughNotAllowed, detail: "Upstream \(name) has no passThrough.account: its reads go through /v1/tenants/{id}/api with each organization's own session.")
            }
            upstream = found
            organization = nil
            form = .upstream
        }
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

/// `?pages=all`: every page of a collection, walked by the gateway and answered as one array.
/// VSPC pages by `limit` (500 at most) and `offset` in its envelope; VB365 v8 by `limit` and
/// `offset` in `{offset, limit, results}`; VB365 before v8 (a bare array) is one page. Bounded:
/// at most ``maxPages`` pages and the upstream's `maxResponseBytes` in all, past which the
/// answer is an error, never a silent cut.
enum PageWalk {
    static let maxPages = 200
    static let vspcPageSize = 500
    static let vb365PageSize = 1000

    /// `{"data": [...], "meta": {"total": n, "pages": k}}`.
    static func readAll(_ location: PassThroughLocation, clients: UpstreamClients) async throws -> [UInt8] {
        let upstream = location.upstream
        let bound = upstream.definition.options.maxResponseBytes
        let base = location.path.forwardedQuery.filter { $0.0 != "limit" && $0.0 != "offset" }
        var items: [Any] = []
        var bytes = 0
        for page in 0..<maxPages {
            let size = upstream.definition.product == .vspc ? vspcPageSize : vb365PageSize
            let query = base + [("limit", String(size)), ("offset", String(items.count))]
            let body = try PassThroughReads.body(of: try await PassThroughReads.send(location, clients: clients, query: query), location)
            bytes += body.count
            guard bytes <= bound else { throw tooLarge(location, "more than \(bound) bytes") }
            guard let value = try? JSONSerialization.jsonObject(with: Data(body)) else {
                throw VeeamAPIError(code: .badResponse, status: 200, upstreamMessage: "a page that is not JSON")
            }
            let found: [Any]
            var total: Int?
            if let array = value as? [Any] {
                // VB365 before v8: the whole collection at once.
                items += array
                return try encode(items, pages: page + 1)
            } else if let object = value as? [String: Any], let data = object["data"] as? [Any] {
                found = data
                total = ((object["meta"] as? [String: Any])?["pagingInfo"] as? [String: Any])?["total"] as? Int
            } else if let object = value as? [String: Any], let results = object["results"] as? [Any] {
                found = results
            } else {
                throw VeeamAPIError(code: .badResponse, status: 200, upstreamMessage: "a page that is neither an array, {data} nor {results}")
            }
            items += found
            if found.count < size || found.isEmpty || total.map({ items.count >= $0 }) == true {
                return try encode(items, pages: page + 1)
            }
        }
        throw tooLarge(location, "more than \(maxPages) pages")
    }

    static func encode(_ items: [Any], pages: Int) throws -> [UInt8] {
        let document: [String: Any] = ["data": items, "meta": ["total": items.count, "pages": pages]]
        guard let data = try? JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            throw VeeamAPIError(code: .badResponse, status: 200, upstreamMessage: "pages that do not make one document")
        }
        return Array(data)
    }

    static func tooLarge(_ location: PassThroughLocation, _ what: String) -> GatewayError {
        GatewayError(
            .upstream(.answer(.badResponse)),
            detail: "\(location.method) \(location.path.path) on \(location.upstream.name) has \(what) with pages=all; page with limit and offset instead.",
            upstream: location.upstream.name)
    }
}

/// VSPC's async actions, followed for pass-through: a 202 names the action in `Location`; its
/// status (`GET /asyncActions/{id}`) is polled until it is no longer `running`, then its result
/// (`GET /asyncActions/{id}/result`) is the answer. Only the action's id is taken from
/// `Location` (a UUID), and the gateway's own base URL used: a 202 never sends the gateway
/// elsewhere. Bounded by the caller's deadline and by ``maxPolls``.
public enum AsyncActions {
    static let maxPolls = 100
    static let pollInterval: Duration = .milliseconds(200)

    static func follow(_ accepted: UpstreamResponse, client: VSPCClient, upstream: String) async throws -> UpstreamResponse {
        guard let location = accepted.header("location"), let id = actionID(location) else {
            throw VeeamAPIError(code: .asyncPending, status: 202, upstreamMessage: "a 202 without an async action's Location")
        }
        for poll in 0..<maxPolls {
            let info = try await client.read(["asyncActions", id])
            guard info.status == 200 else { throw VeeamAPIError.from(info) }
            switch status(of: info.body) {
            case "running":
                try await Task.sleep(for: poll == 0 ? .milliseconds(50) : pollInterval)
            case "succeed":
                return try await client.read(["asyncActions", id, "result"])
            case let other:
                throw VeeamAPIError(code: .badResponse, status: 200, upstreamMessage: "async action \(id) ended \(other ?? "without a status")")
            }
        }
        throw VeeamAPIError(code: .asyncPending, status: 202, upstreamMessage: "async action \(id) still running after \(maxPolls) polls")
    }

    /// The action's id from `…/api/v3/asyncActions/{uuid}`; nil for anything else.
    public static func actionID(_ location: String) -> String? {
        let path = location.split(separator: "?", maxSplits: 1).first.map(String.init) ?? location
        let parts = path.split(separator: "/")
        guard parts.count >= 4, parts[parts.count - 2] == "asyncActions", parts[parts.count - 3] == "v3", parts[parts.count - 4] == "api",
            let id = parts.last, UUID(uuidString: String(id)) != nil
        else { return nil }
        return id.lowercased()
    }

    /// `data.status` of an `AsyncActionInfo` answer.
    static func status(of body: [UInt8]) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return nil }
        return (object["data"] as? [String: Any])?["status"] as? String
    }
}
