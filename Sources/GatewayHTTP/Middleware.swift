import GatewayAccess
import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import Logging
import TenantModel

/// Takes `X-Request-Id` from the caller when well-formed (1-128 of `[A-Za-z0-9._:-]`), else makes
/// a UUID; echoes it, scopes it for upstream calls, and writes one access-log line per request.
struct RequestIDAndAccessLog: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let logger: Logger
    let state: SnapshotSource
    let accessLog: AccessLog
    /// Where answered problems are recorded for the status page.
    let board: StatusBoard?

    static let requestIDHeader = HTTPField.Name("X-Request-Id")

    static func isAcceptable(_ id: String) -> Bool {
        (1...128).contains(id.utf8.count)
            && id.utf8.allSatisfy { b in
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E || b == 0x5F || b == 0x3A || b == 0x2D
            }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        var context = context
        context.snapshot = state.snapshot
        let offered = Self.requestIDHeader.flatMap { request.headers[$0] } ?? ""
        context.requestID = Self.isAcceptable(offered) ? offered : RequestIDs.make()
        let id = context.requestID
        var response: Response
        do {
            response = try await RequestScope.$requestID.withValue(id) { try await next(request, context) }
        } catch {
            response = problemResponse(for: error, request: request, requestID: id, caller: context.callerNote.id)
        }
        if let name = Self.requestIDHeader { response.headers[name] = id }
        accessLog.record(
            requestID: id, method: request.method.rawValue, path: request.uri.path, caller: context.callerNote.id, status: Int(response.status.code),
            elapsed: ContinuousClock.now - started)
        return response
    }

    func problemResponse(for error: any Error, request: Request, requestID: String, caller: String?) -> Response {
        let gatewayError: GatewayError
        switch error {
        case let error as HTTPError where error.status == .notFound:
            if let allowed = GatewayApplication.allowedMethods(forPath: request.uri.path), !allowed.contains(request.method) {
                gatewayError = .methodNotAllowed(allowed.map(\.rawValue).joined(separator: ", "))
            } else {
                gatewayError = .routeNotFound
            }
        case let error as HTTPError:
            gatewayError = GatewayError(.httpProtocol(status: Int(error.status.code)), detail: "The request could not be served.")
        default:
            gatewayError = Self.gatewayError(for: error, requestID: requestID, logger: logger)
        }
        return Self.render(gatewayError, method: request.method.rawValue, path: request.uri.path, requestID: requestID, caller: caller, logger: logger, board: board)
            .response
    }

    /// The problem a handler's error is answered with: a ``GatewayError`` as itself, anything else
    /// (a bug) as a 500, logged by type only (its description might carry what must not be seen).
    static func gatewayError(for error: any Error, requestID: String, logger: Logger) -> GatewayError {
        if let error = error as? GatewayError { return error }
        logger.error("unexpected error", metadata: ["request_id": "\(requestID)", "error": "\(String(describing: type(of: error)))"])
        return .internalError
    }

    /// The problem+json answer to an error, with its `Retry-After`, `Allow`, `WWW-Authenticate`
    /// and `X-Request-Id`; logs failures worth an operator's attention. One function for the
    /// router and the hot path, so both answer a refusal with the same bytes.
    static func render(
        _ gatewayError: GatewayError, method: String, path: String, requestID: String, caller: String?, logger: Logger, board: StatusBoard?
    ) -> RenderedResponse {
        // The status page's recent problems: the route template, the code, the upstream, the
        // request id, and the tenant id only when it is a well-formed one (never raw input).
        let tenant = path.hasPrefix("/v1/tenants/") ? String(path.dropFirst("/v1/tenants/".count)) : nil
        if StatusBoard.keeps(gatewayError) { board?.problem(
            route: MethodLabel.label(method) + " " + MetricsMiddleware.route(path), status: gatewayError.status, code: gatewayError.code.rawValue, upstream: gatewayError.upstream,
            requestID: requestID, tenant: tenant.flatMap { TenantID.parse($0) != nil ? $0 : nil }, caller: caller) }
        if gatewayError.status >= 500 || gatewayError.logDetail != nil {
            logger.warning(
                "request failed",
                metadata: ["request_id": "\(requestID)", "code": "\(gatewayError.code)", "upstream": "\(gatewayError.upstream ?? "-")", "detail": "\(gatewayError.logDetail ?? gatewayError.detail)"])
        }
        var answer = Problem(gatewayError, requestID: requestID, instance: path).rendered(retryAfter: gatewayError.retryAfter, allow: gatewayError.allow)
        if gatewayError.status == 401 { answer.headers[.wwwAuthenticate] = #"Bearer realm="veeam-gateway""# }
        if let name = requestIDHeader { answer.headers[name] = requestID }
        return answer
    }
}

/// Authenticates every `/v1` request (API key in `Authorization: Bearer` or `X-API-Key`, a
/// gateway or IdP JWT, or else a verified client certificate bound to a caller) before anything
/// else runs: a refused caller causes no cache lookup and no upstream call.
struct Authenticate: RouterMiddleware {
    typealias Context = GatewayRequestContext

    static let apiKeyHeader = HTTPField.Name("X-API-Key")
    static let forwardedForHeader = HTTPField.Name("X-Forwarded-For")

    /// The credential headers of a request.
    static func presented(_ request: Request) -> Admission.Presented {
        Admission.Presented(
            apiKey: apiKeyHeader.flatMap { request.headers[$0] }, authorization: request.headers[.authorization],
            forwardedFor: forwardedForHeader.flatMap { request.headers[$0] })
    }

    /// The client a request's failed authentications count against.
    static func client(_ request: Request, context: Context, access: AccessControl) -> String {
        Admission.client(presented(request), peer: context.remoteAddress, access: access)
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        guard let caller = try await Self.caller(request, context: context) else { throw GatewayError.authRequired }
        context.caller = caller
        context.callerNote.id = caller.id
        return try await next(request, context)
    }

    /// The caller a request authenticates as (``Admission``); nil when it presents no
    /// credentials. Invalid credentials, too many failures and an exceeded rate are thrown as
    /// their problems. Routes that anonymous callers may use too (`/readyz`, `/metrics`) call this
    /// directly.
    static func caller(_ request: Request, context: Context) async throws -> Caller? {
        guard let access = context.snapshot?.access else { throw GatewayError.authRequired }
        let presented = presented(request)
        let client = Admission.client(presented, peer: context.remoteAddress, access: access)
        let channel = context.channel
        let outcome = await Admission.decide(presented, client: client, access: access) { await FrontTLS.peerCertificate(of: channel) }
        return try Admission.caller(outcome)
    }
}

/// Request count, latency and in-flight gauge by route template (never the raw path).
struct MetricsMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let metrics: GatewayMetrics

    static let cacheHeader = HTTPField.Name("X-Cache")

    static func route(_ path: String) -> String {
        if path.hasPrefix("/v1/tenants/") { return "/v1/tenants/{id}" }
        return GatewayApplication.operations[path] != nil ? path : "other"
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        metrics.inFlight(1)
        defer { metrics.inFlight(-1) }
        let response = try await next(request, context)
        metrics.request(
            route: Self.route(request.uri.path), method: request.method.rawValue, status: Int(response.status.code), duration: ContinuousClock.now - started,
            cache: Self.cacheHeader.flatMap { response.headers[$0] })
        return response
    }
}
