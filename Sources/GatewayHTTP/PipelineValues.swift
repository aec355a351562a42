import GatewayAccess
import GatewayCore
import HummingbirdCore
import ResponseCache

// What the request pipeline (RequestPipeline.swift) takes and gives: a request as a front end
// read it, the pipeline's decision, its answer, and a request resolved for its fill.

/// A `/v1` request as a front end read it: what the pipeline decides on.
struct PipelineRequest: Sendable {
    /// What the request's target names, before anything is checked.
    enum Target: Sendable {
        /// `GET /v1/tenants/{id}`, the id as written.
        case tenant(String)
        /// `GET /v1/tenants` with its query.
        case list(URI)
        /// `GET /v1/tenants/{id}/api/{path}` or `GET /v1/upstreams/{name}/api/{path}`.
        case passThrough(PassThroughTarget)
        /// `GET /v1/upstreams`.
        case upstreams
        /// `GET /v1/customers` with its query.
        case customers(URI)
        /// `GET /v1/customers/{id}`, the id as written.
        case customer(String)
        /// `GET /v1/customers/drift`.
        case customerDrift
        /// `DELETE /v1/cache` with its query.
        case purge(URI)
        /// `GET /v1/events`: a page of the change feed.
        case events(URI)
        /// `GET /v1/events/stream`, with its `Last-Event-ID`.
        case eventStream(URI, lastEventID: String?)
        /// `GET /v1/status`.
        case status
        /// `POST /v1/auth/token`, with the form's `grant_type` (the client id and key it carries,
        /// or HTTP Basic's, are the request's credentials: ``Admission/Presented/clientCredentials``).
        case issueToken(grantType: String?)
        /// `POST /v1/auth/session`: a status page session for the administrator whose API key
        /// the request presents.
        case openSession
    }

    var target: Target
    var presented: Admission.Presented
    /// The client its failed authentications count against (``Admission/client(_:peer:peerKey:access:)``).
    var client: String
    var cacheControl: String?
    var requestID: RequestID
}

/// What the pipeline made of a request.
enum PipelineDecision: Sendable {
    /// Answered now: a cache hit, or a refusal.
    case answer(PipelineAnswer)
    /// Decided, and to be served by ``RequestPipeline/fill(_:)``.
    case fill(ResolvedRequest)
}

/// An answer the pipeline decided, and whom it was for (nil: no caller was identified).
struct PipelineAnswer: Sendable {
    enum Content: Sendable {
        /// A cacheable answer (200, or 304 for a matching `If-None-Match`) with its `X-Cache`.
        case cached(CachedBody, CacheStatus?)
        /// A JSON document, 200, not cacheable; `.statusPage`: the status page's (`no-store`, and
        /// the page's security headers).
        case json([UInt8], JSONKind = .plain)
        /// A problem+json answer.
        case problem(GatewayError)
        /// An upstream's 2xx answer to a write passed through: its status, its body without
        /// secrets (nil: none), never cached.
        case written(status: Int, body: [UInt8]?)
        /// The change feed as Server-Sent Events: only the router streams (the hot path hands
        /// `/v1/events/stream` on).
        case eventStream(FeedReads.StreamPlan)
    }

    /// Which headers a JSON document carries beside its type.
    enum JSONKind: Sendable {
        case plain
        /// Never kept by a cache (`Cache-Control: no-store`): an issued token.
        case noStore
        case statusPage
        /// The status page's session: its `Set-Cookie` values, then as ``statusPage``.
        case sessionOpened(cookies: [String])
    }

    var content: Content
    var callerID: String?

    init(_ content: Content, callerID: String?) {
        self.content = content
        self.callerID = callerID
    }

    /// `X-Cache` of the answer, for the metrics.
    var cacheStatus: CacheStatus? {
        if case .cached(_, let status) = content { return status }
        return nil
    }
}

/// A request located, admitted (its rate taken) and authorized, which only a fill can answer:
/// everything ``RequestPipeline/fill(_:)`` needs, taken when the request was decided (the
/// snapshot too, so a reload meanwhile does not change what it is served under).
struct ResolvedRequest: Sendable {
    enum Work: Sendable {
        case tenant(TenantLocation)
        case list(TenantQuery)
        case passThrough(PassThroughLocation)
        case customers(TenantQuery)
        case customer(String)
        case customerDrift
        case upstreams
        case purge(upstream: String?, tenant: String?)
        case status
        case events(FeedQuery)
        case eventStream(FeedQuery)
        /// The issuer the configuration has (its absence is decided by `locate`).
        case issueToken(GatewayTokenIssuer)
        case openSession

        /// Whether serving it may depend on what a company's caller may read (then its customers
        /// are joined first). A credential exchange reads nothing upstream.
        var readsForCaller: Bool {
            switch self {
            case .issueToken, .openSession: false
            default: true
            }
        }
    }

    let work: Work
    let snapshot: GatewaySnapshot
    let caller: Caller
    /// An administrator's `no-cache`: skip the lookup and refresh the entry.
    let bypass: Bool
    let requestID: String
    /// A company's caller refused only because its customers were not joined yet: the fill joins
    /// them and decides again.
    var membershipPending = false

    init(work: Work, snapshot: GatewaySnapshot, caller: Caller, bypass: Bool, requestID: String, membershipPending: Bool = false) {
        self.work = work
        self.snapshot = snapshot
        self.caller = caller
        self.bypass = bypass
        self.requestID = requestID
        self.membershipPending = membershipPending
    }
}

extension ListAnswer {
    var cachedBody: CachedBody { CachedBody(body: body, etag: etag, age: age, maxAge: maxAge) }
}

struct UpstreamList: Encodable {
    var data: [UpstreamInfo]
}

/// `POST /v1/auth/token`'s answer (RFC 6749, section 5.1).
struct IssuedToken: Encodable {
    var access_token: String
    var token_type: String
    var expires_in: Int
}

/// `POST /v1/auth/session`'s answer: how long the session lasts, in seconds.
struct SessionOpened: Encodable {
    var expiresIn: Int
}

struct PurgeAnswer: Encodable {
    var purged: Int
    /// With a shared tier: whether the other replicas were told.
    var replicas: String?
}
