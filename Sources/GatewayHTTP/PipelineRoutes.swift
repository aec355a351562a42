import GatewayAccess
import GatewayCore
import Hummingbird

/// The router's side of the pipeline: each `/v1` read and administration route turns its
/// `Request` into a ``PipelineRequest``, and the pipeline's answer into a `Response` (a problem
/// is thrown, for ``RouterRecording`` to answer and record).
enum PipelineRoutes {
    static func register(on router: Router<GatewayRequestContext>, pipeline: RequestPipeline) {
        let v1 = router.group("v1")
        v1.get("status") { request, context in try await serve(.status, request, context, pipeline) }
        v1.get("tenants") { request, context in try await serve(.list(request.uri), request, context, pipeline) }
        v1.get("tenants/:id") { request, context in try await serve(.tenant(context.parameters.get("id") ?? ""), request, context, pipeline) }
        v1.get("upstreams") { request, context in try await serve(.upstreams, request, context, pipeline) }
        v1.get("tenants/:id/api/**") { request, context in try await serve(passThrough(request, tenantForm: true), request, context, pipeline) }
        v1.get("upstreams/:name/api/**") { request, context in try await serve(passThrough(request, tenantForm: false), request, context, pipeline) }
        v1.delete("cache") { request, context in try await serve(.purge(request.uri), request, context, pipeline) }
    }

    /// A pass-through target from the request's target as sent (still percent-encoded: the
    /// pipeline refuses what is encoded). The router matched `…/api/**`, so the target is one;
    /// should it not parse, an empty path is located and refused.
    static func passThrough(_ request: Request, tenantForm: Bool) -> PipelineRequest.Target {
        let target = Substring(request.uri.path + (request.uri.query.map { "?" + $0 } ?? ""))
        if let parsed = PassThroughTarget(target: target, method: request.method.rawValue) { return .passThrough(parsed) }
        return .passThrough(PassThroughTarget(via: tenantForm ? .tenant("") : .upstream(""), method: request.method.rawValue, rawPath: "", rawQuery: nil))
    }

    static func serve(
        _ target: PipelineRequest.Target, _ request: Request, _ context: GatewayRequestContext, _ pipeline: RequestPipeline
    ) async throws -> Response {
        let snapshot = try GatewayApplication.snapshot(context)
        var presented = Authenticate.presented(request)
        if case .status = target, let cookie = request.headers[.cookie] { presented.statusSession = StatusSessions.token(inCookieHeader: cookie) }
        let asked = PipelineRequest(
            target: target, presented: presented, client: Admission.client(presented, peer: context.remoteAddress, access: snapshot.access),
            cacheControl: request.headers[.cacheControl], requestID: context.requestID)
        let channel = context.channel
        let answer: PipelineAnswer
        switch await pipeline.decide(asked, snapshot: snapshot, certificate: { await FrontTLS.peerCertificate(of: channel) }) {
        case .answer(let decided): answer = decided
        case .fill(let resolved): answer = await pipeline.fill(resolved)
        }
        context.callerNote.id = answer.callerID
        if case .problem(let error) = answer.content { throw error }
        var writer = ResponseAnswerWriter()
        AnswerRendering.write(
            answer.content, requestID: context.requestID, ifNoneMatch: request.headers[.ifNoneMatch], instance: request.uri.path, into: &writer)
        return writer.response
    }
}
