import GatewayAccess
import GatewayCore
import Foundation
import Hummingbird
import HTTPTypes

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
        v1.get("customers") { request, context in try await serve(.customers(request.uri), request, context, pipeline) }
        v1.get("customers/drift") { request, context in try await serve(.customerDrift, request, context, pipeline) }
        v1.get("customers/:id") { request, context in try await serve(.customer(context.parameters.get("id") ?? ""), request, context, pipeline) }
        v1.get("tenants/:id/api/**") { request, context in try await serve(passThrough(request), request, context, pipeline) }
        v1.get("upstreams/:name/api/**") { request, context in try await serve(passThrough(request), request, context, pipeline) }
        // Writes, where an operator's route allows them (the shipped table has none).
        v1.post("tenants/:id/api/**") { request, context in
            try await serve(passThrough(request, body: try await writeBody(request)), request, context, pipeline)
        }
        v1.post("upstreams/:name/api/**") { request, context in
            try await serve(passThrough(request, body: try await writeBody(request)), request, context, pipeline)
        }
        v1.delete("cache") { request, context in try await serve(.purge(request.uri), request, context, pipeline) }
        v1.get("events") { request, context in try await serve(.events(request.uri), request, context, pipeline) }
        v1.get("events/stream") { request, context in
            let lastEventID = HTTPField.Name("Last-Event-ID").flatMap { request.headers[$0] }
            return try await serve(.eventStream(request.uri, lastEventID: lastEventID), request, context, pipeline)
        }
        // The credential exchanges: a client id and its key for a token, and an administrator's
        // API key for a status page session. Each presents only the credential its route takes.
        v1.post("auth/token") { request, context in
            let form = try await TokenRequestForm.read(request)
            var presented = Authenticate.presented(request)
            presented.apiKey = nil
            presented.authorization = nil
            presented.clientCredentials = form.credentials
            return try await serve(.issueToken(grantType: form.grantType), request, context, pipeline, presented: presented)
        }
        v1.post("auth/session") { request, context in
            var presented = Authenticate.presented(request)
            presented.authorization = nil
            return try await serve(.openSession, request, context, pipeline, presented: presented)
        }
    }

    /// A pass-through target from the request's target as sent (still percent-encoded: the
    /// pipeline refuses what is encoded).
    static func passThrough(_ request: Request, body: [UInt8]? = nil) -> PipelineRequest.Target {
        .passThrough(PassThroughTarget(target: request.uri.path + (request.uri.query.map { "?" + $0 } ?? ""), method: request.method.rawValue, body: body))
    }

    /// The largest body a write passed through may carry.
    static let maxWriteBody = 1 << 20

    /// A write's body: JSON up to ``maxWriteBody`` (413 beyond, 400 when it is not JSON), nil when empty.
    static func writeBody(_ request: Request) async throws -> [UInt8]? {
        var request = request
        let collected: ByteBuffer
        do {
            collected = try await request.collectBody(upTo: maxWriteBody)
        } catch {
            throw GatewayError(.bodyTooLarge, detail: "A write passed through carries at most \(maxWriteBody / 1024) KiB.")
        }
        guard collected.readableBytes > 0 else { return nil }
        let bytes = Array(collected.readableBytesView)
        guard (try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])) != nil else {
            throw GatewayError.badRequest(.invalidRequest, "A write passed through carries a JSON body, or none.")
        }
        return bytes
    }

    /// Serves `target` through the pipeline; `presented`: the credentials, where the route takes
    /// other than the request's headers.
    static func serve(
        _ target: PipelineRequest.Target, _ request: Request, _ context: GatewayRequestContext, _ pipeline: RequestPipeline,
        presented: Admission.Presented? = nil
    ) async throws -> Response {
        let snapshot = try GatewayApplication.snapshot(context)
        var presented = presented ?? Authenticate.presented(request)
        if case .status = target, let cookie = request.headers[.cookie] { presented.statusSession = StatusSessions.token(inCookieHeader: cookie) }
        let asked = PipelineRequest(
            target: target, presented: presented, client: Admission.client(presented, peer: context.remoteAddress, access: snapshot.access),
            cacheControl: request.headers[.cacheControl], requestID: RequestID(context.requestID))
        let channel = context.channel
        let answer: PipelineAnswer
        switch await pipeline.decide(asked, snapshot: snapshot, certificate: { await FrontTLS.peerCertificate(of: channel) }) {
        case .answer(let decided): answer = decided
        case .fill(let resolved): answer = await pipeline.fill(resolved)
        }
        context.callerNote.id = answer.callerID
        if case .problem(let error) = answer.content { throw error }
        if case .eventStream(let plan) = answer.content { return FeedReads.response(plan, requestID: context.requestID) }
        var writer = ResponseAnswerWriter()
        AnswerRendering.write(
            answer.content, requestID: RequestID(context.requestID), ifNoneMatch: request.headers[.ifNoneMatch], instance: request.uri.path, into: &writer)
        return writer.response
    }
}
