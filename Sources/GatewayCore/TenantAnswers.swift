public import Foundation
public import ResponseCache
public import TenantModel

// What the tenant service answers: the list query, list bodies and their sources, the list answer
// ready to send, what `/v1/upstreams` shows, and the shared tier's state. Values only.

/// Query of `GET /v1/tenants`.
public struct TenantQuery: Sendable, Equatable {
    public var product: Tenant.Product?
    public var upstream: String?
    /// Name contains, case-insensitive; at most ``maxSearchBytes`` bytes of UTF-8.
    public var q: String?
    /// The most UTF-8 bytes `q` may have (counted in bytes: a character may be thousands of them).
    public static let maxSearchBytes = 200
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
    public var status: State

    /// How this source's part of the list came to be.
    public enum State: String, Sendable, Encodable {
        /// Fresh from the upstream or the cache.
        case ok
        /// Served stale: past its TTL, or the refresh failed (then `problem` says why).
        case stale
        /// The upstream failed (nothing from it), or part of it did (`problem` says which).
        case error
    }
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
        self.code = error.code.rawValue
    }
}

/// `GET /v1/tenants` answer's body.
public struct TenantList: Sendable, Encodable {
    public var data: [Tenant]
    public var meta: Meta

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

/// The tenants a caller may see of some sources, filtered by `q` and sorted (every page of a
/// list is a slice of it), with the cache entries (by time of storing) it was made from.
struct ListView: Sendable {
    var stamps: [ContinuousClock.Instant?]
    var tenants: [Tenant]
    var sources: [SourceStatus]
}

/// A list rendering and the cache entries (by time of storing) it was made from.
struct RenderedList: Sendable {
    var stamps: [ContinuousClock.Instant?]
    var body: [UInt8]
    var etag: String
}

/// The state of an upstream's tokens, over all its accounts.
public enum TokenState: String, Sendable, Encodable {
    /// No account (nothing to log in with).
    case none
    /// Every account holds a valid token.
    case valid
    /// Some do, others do not (yet).
    case partial
    /// No account logged in yet, or every token expired.
    case expired
    /// An account's login failed.
    case failed
}

/// What `/v1/upstreams` shows of an upstream: no secrets.
public struct UpstreamInfo: Sendable, Encodable {
    public var name: String
    public var product: Tenant.Product
    public var baseURL: String
    public var accounts: Int
    public var tokenState: TokenState
    public var reachable: Bool?
    /// VB365: the REST version in use (`v5`…`v8`), null while `auto` has not found it yet;
    /// VSPC: the `X-Client-Version` sent.
    public var apiVersion: String?
    /// VB365: which VB365 server of each VSPC upstream this upstream is, as last found (null
    /// before any VSPC was asked).
    public var vspcServers: [VSPCServerLink]? = nil
}

/// A VB365 upstream as one of a VSPC upstream's VB365 servers (``VSPCServerMatch``).
public struct VSPCServerLink: Sendable, Encodable, Equatable {
    public var upstream: String
    /// The server's `instanceUid`; null when none or several matched.
    public var serverUid: String?
    /// `configured`, `host`, or why nothing matched.
    public var how: String
}

/// What the shared tier says of itself, for `/v1/status`, `/readyz` and `/metrics`.
public struct SharedTierStatus: Sendable {
    /// `redis 10.0.0.5:6379/0: closed`.
    public var line: String
    /// The circuit: `closed` (in use), `open` (down: every replica on its own), `half-open`.
    public var state: String
    public var commands: Int
    public var failures: Int
    /// Commands not even tried while the circuit was open: each one a fallback to local behaviour.
    public var fallbacks: Int
    /// The shared cache level's hits, misses, lock waits and fallbacks.
    public var cache: SharedLevelStatistics
    /// Purge and reload messages ignored, by reason (`unsigned`, `stale`, `replayed`).
    public var ignoredMessages: [String: Int] = [:]
    public init(line: String, state: String, commands: Int, failures: Int, fallbacks: Int, cache: SharedLevelStatistics) {
        self.line = line
        self.state = state
        self.commands = commands
        self.failures = failures
        self.fallbacks = fallbacks
        self.cache = cache
    }
}
