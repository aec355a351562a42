import GatewayTracing
import Tracing
import GatewayAccess
import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import Logging
import TenantModel

/// The router's frame around every route: takes the request's snapshot and its request id (the
/// caller's `X-Request-Id` when well-formed, else a new one), scopes the id for upstream calls,
/// answers any thrown error as a problem (``AnswerRendering``), echoes the id, and leaves the
/// request's one record (``RequestRecorder``).
struct RouterRecording: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let state: SnapshotSource
    let recorder: RequestRecorder

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        var context = context
        context.snapshot = state.snapshot
        context.requestID = RequestIDs.accepted(AnswerHeader.requestID.name.flatMap { request.headers[$0] }) ?? RequestIDs.make()
        let id = context.requestID
        recorder.metrics.inFlight(1)
        defer { recorder.metrics.inFlight(-1) }
        var response: Response
        var problem: GatewayError?
        let span = GatewayTracing.isOn ? Self.span(request) : nil
        do {
            response = try await RequestScope.$requestID.withValue(id) { try await GatewayTracing.within(span) { try await next(request, context) } }
        } catch {
            let answered = self.problem(for: error, request: request, requestID: id)
            var writer = ResponseAnswerWriter()
            AnswerRendering.write(.problem(answered), requestID: RequestID(id), ifNoneMatch: nil, instance: request.uri.path, into: &writer)
            response = writer.response
            problem = answered
        }
        if let name = AnswerHeader.requestID.name { response.headers[name] = id }
        recorder.record(
            RequestRecorder.Entry(
                method: request.method.rawValue, path: .path(request.uri.path), requestID: RequestID(id), callerID: context.callerNote.id, status: Int(response.status.code),
                cache: AnswerHeader.xCache.name.flatMap { response.headers[$0] }, elapsed: ContinuousClock.now - started, problem: problem, hotPath: false,
                span: span))
        return response
    }

    static let traceparent = HTTPField.Name("traceparent")
    static let tracestate = HTTPField.Name("tracestate")

    /// The server span of a request the router serves, continuing the caller's trace.
    static func span(_ request: Request) -> (any Span)? {
        let states = tracestate.map { request.headers[values: $0] } ?? []
        return GatewayTracing.serverSpan(
            traceparent: traceparent.flatMap { request.headers[$0] }, tracestate: states.isEmpty ? nil : states.joined(separator: ","))
    }

    /// The problem a route's error is answered with: the router's own 404 and 405, a protocol
    /// refusal, or the pipeline's mapping of anything else.
    func problem(for error: any Error, request: Request, requestID: String) -> GatewayError {
        switch error {
        case let error as HTTPError where error.status == .notFound:
            if let allowed = APISurface.allowedMethods(forPath: request.uri.path), !allowed.contains(request.method) {
                return .methodNotAllowed(allowed.map(\.rawValue).joined(separator: ", "))
            }
            return .routeNotFound
        case let error as HTTPError:
            return GatewayError(.httpProtocol(status: Int(error.status.code)), detail: "The request could not be served.")
        default:
            return RequestPipeline.problem(for: error, requestID: requestID, logger: recorder.logger)
        }
    }
}

/// The router's reading of credentials (``Admission``) for the routes outside the pipeline that
/// take a caller: `/readyz` and `/metrics` (anonymous allowed), the status page's exchange and
/// report.
enum Authenticate {
    static let apiKeyHeader = HTTPField.Name("X-API-Key")
    static let forwardedForHeader = HTTPField.Name("X-Forwarded-For")

    /// The credential headers of a request.
    static func presented(_ request: Request) -> Admission.Presented {
        Admission.Presented(
            apiKey: apiKeyHeader.flatMap { request.headers[$0] }, authorization: request.headers[.authorization],
            forwardedFor: forwardedForHeader.flatMap { request.headers[$0] })
    }

    /// The client a request's failed authentications count against.
    static func client(_ request: Request, context: GatewayRequestContext, access: AccessControl) -> String {
        Admission.client(presented(request), peer: context.remoteAddress, access: access)
    }

    /// The caller a request authenticates as (``Admission``); nil when it presents no
    /// credentials. Invalid credentials, too many failures and an exceeded rate are thrown as
    /// their problems.
    static func caller(_ request: Request, context: GatewayRequestContext) async throws -> Caller? {
        guard let access = context.snapshot?.access else { throw GatewayError.authRequired }
        let presented = presented(request)
        let client = Admission.client(presented, peer: context.remoteAddress, access: access)
        let channel = context.channel
        let outcome = await Admission.decide(presented, client: client, access: access) { await FrontTLS.peerCertificate(of: channel) }
        return try Admission.caller(outcome)
    }
}
