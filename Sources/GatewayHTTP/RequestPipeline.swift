import ChangeFeed
import GatewayAccess
import GatewayCore
import HTTPTypes
import HummingbirdCore
import Logging
import GatewayObservability
import ResponseCache
import TenantModel

/// The one sequence every authenticated `/v1` request goes through, whichever front end framed
/// it (the event-loop hot path over HTTP/1.1, or a Hummingbird route over HTTP/1.1 and HTTP/2):
///
/// locate → admit (the caller's rate taken) → refuse a bad target → cache bypass → authorize →
/// cache → answer, or hand a resolved request to ``fill(_:)``.
///
/// Each decision is made once, here: a request the hot path could not answer on the spot is
/// carried into its fill as a ``ResolvedRequest`` (located, admitted, authorized), never decided
/// again. The front ends only translate: bytes or a `Request` into a ``PipelineRequest``, and a
/// ``PipelineAnswer`` back through ``AnswerRendering`` into bytes or a `Response`. Every request,
/// pipeline or not, leaves one record (``RequestRecorder``).
struct RequestPipeline: Sendable {
    let logger: Logger
    /// The status page's sessions and board (the router's pipeline; the hot path serves no
    /// `/v1/status`).
    var sessions: StatusSessions? = nil
    var board: StatusBoard? = nil

    /// Decides without waiting (the hot path): nil when admission must wait (an identity
    /// provider's token, a client certificate), in which case nothing was recorded or taken and
    /// the request goes to the router.
    /// `memo` is the connection's last presented API key (``PresentedKeyMemo``).
    func decideWithoutWaiting(_ request: PipelineRequest, snapshot: GatewaySnapshot, memo: inout PresentedKeyMemo) -> PipelineDecision? {
        guard let outcome = Admission.decide(request.presented, client: request.client, access: snapshot.access, memo: &memo) else { return nil }
        return decide(request, admitted: outcome, snapshot: snapshot)
    }

    /// Decides, waiting for admission where it must (the router).
    func decide(_ request: PipelineRequest, snapshot: GatewaySnapshot, certificate: () async -> PeerCertificate?) async -> PipelineDecision {
        let outcome = await Admission.decide(request.presented, client: request.client, access: snapshot.access, certificate: certificate)
        return decide(request, admitted: outcome, snapshot: snapshot)
    }

    /// The sequence after admission's outcome is known.
    private func decide(_ request: PipelineRequest, admitted outcome: AccessControl.Outcome, snapshot: GatewaySnapshot) -> PipelineDecision {
        let service = snapshot.service
        let policy = snapshot.access.policy
        // Located first, refused only after admission: a caller without valid credentials learns
        // nothing of ids or parameters, and a bad target costs no upstream call.
        let located = Self.locate(request.target, in: snapshot)
        let caller: Caller
        do {
            if let admitted = try Admission.caller(outcome) {
                caller = admitted
            } else if case .status = request.target, let token = request.presented.statusSession, let sessions {
                // The session holds a caller id only: its roles are the current configuration's.
                guard let record = sessions.caller(for: token, in: snapshot.access.directory) else {
                    return .answer(PipelineAnswer(.problem(.authInvalid), callerID: nil))
                }
                caller = Caller(id: record.id, roles: record.roles, scopes: record.scopes, method: .statusSession)
            } else {
                return .answer(PipelineAnswer(.problem(Self.credentialsRequired(request.target)), callerID: nil))
            }
        } catch {
            return .answer(PipelineAnswer(.problem(error), callerID: nil))
        }
        let work: ResolvedRequest.Work
        switch located {
        case .success(let found): work = found
        case .failure(let error): return .answer(PipelineAnswer(.problem(error), callerID: caller.id))
        }
        let bypass = CacheBypass.requested(request.cacheControl, caller: caller, policy: policy)
        switch work {
        case .tenant(let location):
            do {
                try service.reads.authorize(caller, at: location, policy: policy)
            } catch {
                // A company's caller whose customers are not joined yet is decided after the join.
                guard service.customers.awaitsMembership(caller) else { return .answer(PipelineAnswer(.problem(error), callerID: caller.id)) }
                return .fill(ResolvedRequest(work: work, snapshot: snapshot, caller: caller, bypass: bypass, requestID: request.requestID.text, membershipPending: true))
            }
            if !bypass, let fresh = service.reads.freshTenant(at: location) {
                return .answer(PipelineAnswer(.cached(fresh, .hit), callerID: caller.id))
            }
        case .passThrough(let location):
            do {
                try service.passThrough.authorize(caller, at: location, policy: policy)
            } catch {
                guard location.organization != nil, service.customers.awaitsMembership(caller) else {
                    return .answer(PipelineAnswer(.problem(error), callerID: caller.id))
                }
                return .fill(ResolvedRequest(work: work, snapshot: snapshot, caller: caller, bypass: bypass, requestID: request.requestID.text, membershipPending: true))
            }
            if !bypass, !location.isWrite, let fresh = service.passThrough.fresh(at: location) {
                return .answer(PipelineAnswer(.cached(fresh, .hit), callerID: caller.id))
            }
        case .list(let query):
            // The list is authorized by what it selects: only what the caller may read is fetched.
            if !bypass, !service.customers.awaitsMembership(caller), let list = service.lists.cachedListAnswer(query, caller: caller, policy: policy) {
                return .answer(PipelineAnswer(.cached(list.cachedBody, list.cacheStatus), callerID: caller.id))
            }
        case .customers, .customer, .customerDrift:
            do {
                if case .customerDrift = work { try service.customers.authorize(caller, drift: true) } else { try service.customers.authorize(caller) }
            } catch {
                return .answer(PipelineAnswer(.problem(error), callerID: caller.id))
            }
        case .events, .eventStream:
            // Any caller may follow the feed: each event is filtered by what the caller may read.
            break
        case .upstreams, .purge, .status:
            guard policy.isAdministrator(caller) else {
                return .answer(PipelineAnswer(.problem(.adminRequired(policy.administrators)), callerID: caller.id))
            }
        case .issueToken:
            // Only a client id and its key are exchanged for a token, never another token.
            guard caller.method == .clientCredentials else { return .answer(PipelineAnswer(.problem(.authInvalid), callerID: caller.id)) }
        case .openSession:
            // An API key and nothing else: a custom header (no cross-site form can send it) and a
            // caller of the configuration, whose key the session is bound to.
            guard caller.method == .apiKey else {
                return .answer(PipelineAnswer(.problem(Self.credentialsRequired(request.target)), callerID: caller.id))
            }
            guard policy.isAdministrator(caller) else {
                return .answer(PipelineAnswer(.problem(.adminRequired(policy.administrators)), callerID: caller.id))
            }
        }
        return .fill(ResolvedRequest(work: work, snapshot: snapshot, caller: caller, bypass: bypass, requestID: request.requestID.text))
    }

    /// What a target names, checked before any caller is: a malformed id or parameter is a 400,
    /// an unknown upstream a 404.
    static func locate(_ target: PipelineRequest.Target, in snapshot: GatewaySnapshot) -> Result<ResolvedRequest.Work, GatewayError> {
        let service = snapshot.service
        do throws(GatewayError) {
            switch target {
            case .tenant(let id): return .success(.tenant(try service.reads.locate(id)))
            case .list(let uri): return .success(.list(try listQuery(uri)))
            case .passThrough(let target): return .success(.passThrough(try service.passThrough.locate(target)))
            case .upstreams: return .success(.upstreams)
            case .customers(let uri): return .success(.customers(try listQuery(uri, products: false)))
            case .customer(let id): return .success(.customer(id))
            case .customerDrift: return .success(.customerDrift)
            case .purge(let uri): return .success(try purgeScope(uri))
            case .status: return .success(.status)
            case .events(let uri): return .success(.events(try feedQuery(uri, lastEventID: nil, in: snapshot)))
            case .eventStream(let uri, let lastEventID): return .success(.eventStream(try feedQuery(uri, lastEventID: lastEventID, in: snapshot)))
            case .issueToken(let grantType):
                guard let tokens = snapshot.access.tokens else { throw GatewayError.tokensDisabled }
                guard grantType == "client_credentials" else { throw GatewayError.unsupportedGrant }
                return .success(.issueToken(tokens))
            case .openSession: return .success(.openSession)
            }
        } catch {
            return .failure(error)
        }
    }

    /// Serves a resolved request: the upstream reads (through the cache) it needs, under its
    /// request id. Failures become the problem to answer; nothing is thrown.
    func fill(_ resolved: ResolvedRequest) async -> PipelineAnswer {
        let service = resolved.snapshot.service
        let content: PipelineAnswer.Content
        do {
            content = try await RequestScope.$requestID.withValue(resolved.requestID) { () async throws -> PipelineAnswer.Content in
                // What a company's caller may read is known once its customers are joined.
                if resolved.work.readsForCaller { await service.customers.ensureMembership(for: resolved.caller) }
                if resolved.membershipPending {
                    // Decided now, as it would have been with the customers joined.
                    let policy = resolved.snapshot.access.policy
                    switch resolved.work {
                    case .tenant(let location): try service.reads.authorize(resolved.caller, at: location, policy: policy)
                    case .passThrough(let location): try service.passThrough.authorize(resolved.caller, at: location, policy: policy)
                    default: break
                    }
                }
                switch resolved.work {
                case .tenant(let location):
                    let answer = try await service.reads.tenantAnswer(at: location, bypassCache: resolved.bypass)
                    return .cached(CachedBody(body: answer.body, etag: answer.etag, age: answer.age, maxAge: answer.maxAge), answer.cacheStatus)
                case .passThrough(let location) where location.isWrite:
                    let answer = try await service.passThrough.write(at: location, callerID: resolved.caller.id, requestID: resolved.requestID)
                    return .written(status: answer.status, body: answer.body)
                case .passThrough(let location):
                    let answer = try await service.passThrough.answer(at: location, bypassCache: resolved.bypass)
                    return .cached(answer.body, answer.cacheStatus)
                case .list(let query):
                    let answer = try await service.lists.listAnswer(
                        query, caller: resolved.caller, policy: resolved.snapshot.access.policy, bypassCache: resolved.bypass)
                    return .cached(answer.cachedBody, answer.cacheStatus)
                case .upstreams:
                    return .json(try GatewayJSON.encode(UpstreamList(data: await service.upstreamInfo())))
                case .customers(let query):
                    return .json(try await service.customers.list(query, caller: resolved.caller, bypass: resolved.bypass))
                case .customer(let id):
                    return .json(try await service.customers.customer(id, caller: resolved.caller, bypass: resolved.bypass))
                case .customerDrift:
                    return .json(try await service.customers.drift(bypass: resolved.bypass))
                case .status:
                    guard let board else { throw GatewayError.internalInvariant("the pipeline serving /v1/status has no status board") }
                    var report = await service.statusReport(board: board)
                    report.webhooks = resolved.snapshot.webhooks?.all ?? []
                    report.feed = resolved.snapshot.feed?.mode
                    return .json(try GatewayJSON.encode(report), .statusPage)
                case .events(let query):
                    guard let feed = resolved.snapshot.feed else { throw Self.feedNotConfigured }
                    let visible = FeedAccess.visible(resolved.caller, policy: resolved.snapshot.access.policy)
                    return .json(try await FeedReads.page(query, feed: feed, visible: visible))
                case .eventStream(let query):
                    guard let feed = resolved.snapshot.feed, let events = resolved.snapshot.configuration.events else { throw Self.feedNotConfigured }
                    let visible = FeedAccess.visible(resolved.caller, policy: resolved.snapshot.access.policy)
                    return .eventStream(try await FeedReads.plan(query, feed: feed, visible: visible, heartbeat: events.heartbeat))
                case .issueToken(let tokens):
                    return try await issueToken(by: tokens, for: resolved)
                case .openSession:
                    return try openSession(for: resolved)
                case .purge(let upstream, let tenant):
                    // With a shared tier, the shared level and every other replica purge the same.
                    let outcome = await service.purge(upstream: upstream, tenant: tenant)
                    return .json(
                        try GatewayJSON.encode(PurgeAnswer(purged: outcome.purged, replicas: outcome.replicasTold.map { $0 ? "told" : "not reached" })))
                }
            }
        } catch {
            content = .problem(Self.problem(for: error, requestID: resolved.requestID, logger: logger))
        }
        return PipelineAnswer(content, callerID: resolved.caller.id)
    }

    /// A gateway token for the caller whose client id and key the request presented.
    private func issueToken(by tokens: GatewayTokenIssuer, for resolved: ResolvedRequest) async throws -> PipelineAnswer.Content {
        guard let record = resolved.snapshot.access.directory.record(id: resolved.caller.id) else { throw GatewayError.authInvalid }
        let issued = try await tokens.issue(for: record)
        return .json(try GatewayJSON.encode(IssuedToken(access_token: issued.token, token_type: "Bearer", expires_in: issued.expiresIn)), .noStore)
    }

    /// A status page session for the administrator whose API key the request presented: the
    /// session cookie (`HttpOnly`, for `/v1/status` only) and a second one without a secret, which
    /// tells the page (it cannot read the first) that a session is open, so that it asks for the
    /// status instead of for the key and no 401 is seen.
    private func openSession(for resolved: ResolvedRequest) throws -> PipelineAnswer.Content {
        guard let sessions else { throw GatewayError.internalInvariant("the pipeline opening a status session has no sessions") }
        guard let keyHash = resolved.snapshot.access.directory.record(id: resolved.caller.id)?.keyHash else { throw GatewayError.authInvalid }
        let token = sessions.open(for: resolved.caller.id, keyHash: keyHash)
        let seconds = Int(sessions.lifetime.components.seconds)
        let secure = resolved.snapshot.configuration.tls != nil ? "; Secure" : ""
        let cookies = [
            "\(StatusSessions.cookieName)=\(token); Path=/v1/status; Max-Age=\(seconds); HttpOnly; SameSite=Strict\(secure)",
            "\(StatusSessions.cookieName)_open=1; Path=/status; Max-Age=\(seconds); SameSite=Strict\(secure)",
        ]
        return .json(try GatewayJSON.encode(SessionOpened(expiresIn: seconds)), .sessionOpened(cookies: cookies))
    }

    /// The 401 for a request that presents no credentials, saying what its route takes where
    /// that is one kind only.
    static func credentialsRequired(_ target: PipelineRequest.Target) -> GatewayError {
        switch target {
        case .openSession: GatewayError(.authRequired, detail: "Send a PortalAdministrator's API key in X-API-Key.")
        case .issueToken: GatewayError(.authRequired, detail: "Send client_id and client_secret in the form, or with HTTP Basic.")
        default: .authRequired
        }
    }

    /// The problem a handler's error is answered with: a ``GatewayError`` as itself, anything else
    /// (a bug) as a 500, logged by type only (its description might carry what must not be seen).
    static func problem(for error: any Error, requestID: String, logger: Logger) -> GatewayError {
        if let error = error as? GatewayError { return error }
        logger.error("unexpected error", metadata: ["request_id": "\(requestID)", "error": "\(String(describing: type(of: error)))"])
        return .internalError
    }

    /// `GET /v1/tenants` parameters (and `GET /v1/customers`', which has no `product`), checked
    /// before any upstream call.
    static func listQuery(_ uri: URI, products: Bool = true) throws(GatewayError) -> TenantQuery {
        let parameters = uri.queryParameters
        var query = TenantQuery()
        if products, let raw = parameters["product"] {
            guard let product = Tenant.Product(rawValue: String(raw)) else {
                throw GatewayError.badRequest(.invalidParameter, "product must be vb365 or vspc.")
            }
            query.product = product
        }
        if let raw = parameters["upstream"] {
            guard TenantID.isValidUpstreamName(String(raw)) else {
                throw GatewayError.badRequest(.invalidParameter, "upstream must match [a-z0-9-]{1,32}.")
            }
            query.upstream = String(raw)
        }
        if let raw = parameters["q"] {
            let q = String(raw)
            // Bytes, not characters: one visible character can carry thousands of combining
            // marks, and q becomes part of the keys of kept list views and renderings.
            guard q.utf8.count <= TenantQuery.maxSearchBytes, !q.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw GatewayError.badRequest(
                    .invalidParameter, "q must be at most \(TenantQuery.maxSearchBytes) bytes of UTF-8, without control characters.")
            }
            query.q = q
        }
        if let raw = parameters["limit"] {
            guard let limit = Int(String(raw)), (1...500).contains(limit) else {
                throw GatewayError.badRequest(.invalidParameter, "limit must be a whole number from 1 to 500.")
            }
            query.limit = limit
        }
        if let raw = parameters["offset"] {
            guard let offset = Int(String(raw)), (0...1_000_000).contains(offset) else {
                throw GatewayError.badRequest(.invalidParameter, "offset must be a whole number from 0 to 1000000.")
            }
            query.offset = offset
        }
        return query
    }

    /// `DELETE /v1/cache` parameters: everything, one upstream's entries, or one tenant's.
    static let feedNotConfigured = GatewayError(.feedNotConfigured, detail: "This gateway has no change feed: its configuration has no events section.")

    /// A feed request's query: 404 without a feed, 400 for a malformed parameter.
    static func feedQuery(_ uri: URI, lastEventID: String?, in snapshot: GatewaySnapshot) throws(GatewayError) -> FeedQuery {
        guard snapshot.feed != nil, let events = snapshot.configuration.events else { throw feedNotConfigured }
        return try FeedQuery.parse(uri, lastEventID: lastEventID, maxWait: events.maxWait)
    }

    static func purgeScope(_ uri: URI) throws(GatewayError) -> ResolvedRequest.Work {
        let parameters = uri.queryParameters
        let upstream = parameters["upstream"].map(String.init)
        let tenant = parameters["tenant"].map(String.init)
        if let upstream, !TenantID.isValidUpstreamName(upstream) {
            throw GatewayError.badRequest(.invalidParameter, "upstream must match [a-z0-9-]{1,32}.")
        }
        if let tenant, TenantID.parse(tenant) == nil {
            throw GatewayError.badRequest(.invalidParameter, "tenant must be {upstream}.{uuid}.")
        }
        return .purge(upstream: upstream, tenant: tenant)
    }
}

/// Whether a request skips the cache, for both front paths: `Cache-Control: no-cache` from a
/// caller allowed to force refreshes (an administrator) bypasses it and refreshes the entry; from
/// anyone else it is ignored, as is any other `Cache-Control`.
enum CacheBypass {
    static func requested(_ cacheControl: String?, caller: Caller, policy: AccessPolicy) -> Bool {
        guard let cacheControl, asksNoCache(cacheControl) else { return false }
        return policy.isAdministrator(caller)
    }

    /// Whether the value holds `no-cache`, in any case (ASCII; compared as bytes: this runs on
    /// every forced refresh).
    static func asksNoCache(_ value: String) -> Bool {
        let needle: StaticString = "no-cache"
        let wanted = UnsafeBufferPointer(start: needle.utf8Start, count: needle.utf8CodeUnitCount)
        let bytes = Array(value.utf8)
        guard bytes.count >= wanted.count else { return false }
        for start in 0...(bytes.count - wanted.count) {
            var index = 0
            while index < wanted.count {
                let byte = bytes[start + index]
                guard (byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte) == wanted[index] else { break }
                index += 1
            }
            if index == wanted.count { return true }
        }
        return false
    }
}
