import GatewayTracing
import Tracing
import GatewayObservability
import GatewayAccess
import GatewayCore
import HummingbirdCore
import Logging
import NIOCore

/// The hot path's side of the pipeline: a framed ``RawRequest`` into a ``PipelineRequest``, the
/// pipeline's answer into HTTP/1.1 bytes. Shared by every connection; all it touches is
/// thread-safe and synchronous (the configuration snapshot, `Mutex`-guarded cache and limiters).
struct HotPathResponder: Sendable {
    let state: SnapshotSource
    let pipeline: RequestPipeline
    let recorder: RequestRecorder
    let bodies = BodyBuffers()

    /// The responder the front end makes for `state` (one per application, shared by its connections).
    init(state: SnapshotSource, logger: Logger, metrics: MetricsEndpoint, accessLog: AccessLog?) {
        self.init(
            state: state, pipeline: RequestPipeline(logger: logger),
            recorder: RequestRecorder(metrics: metrics.metrics, accessLog: accessLog ?? AccessLog(logger: logger), logger: logger))
    }

    init(state: SnapshotSource, pipeline: RequestPipeline, recorder: RequestRecorder) {
        self.state = state
        self.pipeline = pipeline
        self.recorder = recorder
    }

    var logger: Logger { recorder.logger }
    var metrics: GatewayMetrics { recorder.metrics }

    /// Decides `request` through the pipeline: answers it (a cache hit, or a refusal: the bytes
    /// in a buffer from `allocator`), returns what only a fill can answer, or hands it on having changed nothing
    /// anywhere (a target the pipeline does not serve here, or an admission that must wait) so
    /// that the router serves it as if the hot path did not exist. `peer` is the connection's
    /// peer address, `peerKey` its failed-authentication key (both worked out once per
    /// connection). `arrived` is when the request's bytes were read and `now` reads the same
    /// clock (nanoseconds on the connection's event loop's): the reading the handler made for the
    /// read serves as the request's start, and one more at its end times it.
    func respond(
        to request: RawRequest, arrived: UInt64, now: () -> UInt64, peer: String, peerKey: String, scratch: inout ConnectionScratch,
        allocator: ByteBufferAllocator
    ) -> HotPathDecision {
        let target: PipelineRequest.Target
        if let id = request.tenantID {
            target = .tenant(id)
        } else if let list = request.listTarget {
            target = .list(URI(list))
        } else if let raw = request.passThroughTarget {
            target = .passThrough(PassThroughTarget(target: raw, method: "GET"))
        } else {
            return .handOn
        }
        let snapshot = state.snapshot
        let presented = Admission.Presented(apiKey: request.apiKey, authorization: request.authorization, forwardedFor: request.forwardedFor)
        let asked = PipelineRequest(
            target: target, presented: presented, client: Admission.client(presented, peer: peer, peerKey: peerKey, access: snapshot.access),
            cacheControl: request.cacheControl, requestID: .of(offered: request.requestID, using: &scratch.random))
        switch pipeline.decideWithoutWaiting(asked, snapshot: snapshot, memo: &scratch.presentedKey) {
        case nil:
            return .handOn
        case .fill(let resolved):
            return .fill(HotPathMiss(resolved: resolved, ifNoneMatch: request.ifNoneMatch, path: Self.recordedPath(request), arrived: arrived, span: span(request)))
        case .answer(let answer):
            var writer = HTTP1AnswerWriter(buffer: scratch.answerBuffer(allocator), date: scratch.date(at: arrived), bodies: bodies)
            let status = AnswerRendering.write(
                answer.content, requestID: asked.requestID, ifNoneMatch: request.ifNoneMatch, instance: request.path, into: &writer)
            record(answer, status: status, requestID: asked.requestID, path: Self.recordedPath(request), elapsed: Self.elapsed(from: arrived, to: now()), span: span(request))
            scratch.keep(writer.buffer)
            return .answered(head: writer.buffer, largeBody: writer.largeBody)
        }
    }

    /// Serves a miss (``HotPathDecision/fill(_:)``) through the pipeline's fill, written as the
    /// hot path writes every answer. Called in a task on the connection's event loop
    /// (``EventLoopTaskExecutor``).
    func serve(_ miss: HotPathMiss, date: String, allocator: ByteBufferAllocator) async -> HotPathAnswer {
        metrics.inFlight(1)
        let answer = await GatewayTracing.within(miss.span) { await pipeline.fill(miss.resolved) }
        var writer = HTTP1AnswerWriter(buffer: allocator.buffer(capacity: ConnectionScratch.answerCapacity), date: date, bodies: bodies)
        let status = AnswerRendering.write(
            answer.content, requestID: RequestID(miss.resolved.requestID), ifNoneMatch: miss.ifNoneMatch, instance: miss.path.text, into: &writer)
        return HotPathAnswer(head: writer.buffer, largeBody: writer.largeBody, status: status, answer: answer)
    }

    /// Records a served miss, once its answer is written (its bookkeeping is not on the caller's
    /// way); `now`: a reading of the clock `arrived` was read on.
    func served(_ miss: HotPathMiss, _ answer: HotPathAnswer, now: UInt64) {
        metrics.inFlight(-1)
        record(
            answer.answer, status: answer.status, requestID: RequestID(miss.resolved.requestID), path: miss.path, elapsed: Self.elapsed(from: miss.arrived, to: now),
            span: miss.span)
    }

    /// The time between two readings of a monotonic nanosecond clock (none if they are out of order).
    static func elapsed(from start: UInt64, to end: UInt64) -> Duration {
        .nanoseconds(Int64(clamping: end > start ? end - start : 0))
    }

    /// A head beyond ``RequestHeadLimits``: 431 with the gateway's problem, `Connection: close`,
    /// recorded as any answer (`line`: its request line, when that much was framed; `hotPath`:
    /// whether the handler answers hits, for the hot path's own counter).
    /// `now`: the connection's clock, as for ``respond(to:arrived:now:peer:peerKey:scratch:allocator:)``.
    func refuseHead(_ line: RawRequest.RequestLine?, hotPath: Bool, now: UInt64, scratch: inout ConnectionScratch, allocator: ByteBufferAllocator) -> ByteBuffer {
        var writer = HTTP1AnswerWriter(buffer: allocator.buffer(capacity: 1024), date: scratch.date(at: now), bodies: bodies)
        writer.closing = true
        recorder.refuseHead(
            method: line?.method ?? "other", target: line?.target ?? "", requestID: RequestID.made(using: &scratch.random).text, hotPath: hotPath, into: &writer)
        return writer.buffer
    }

    /// The server span of a request the hot path serves (tracing on only).
    private func span(_ request: RawRequest) -> (any Span)? {
        guard GatewayTracing.isOn else { return nil }
        return GatewayTracing.serverSpan(traceparent: request.traceparent, tracestate: request.tracestate)
    }

    /// How a request's path is recorded: a tenant's as its id alone (``RecordedPath``).
    private static func recordedPath(_ request: RawRequest) -> RecordedPath {
        if let id = request.tenantID { return .tenant(id: id) }
        return .path(request.path)
    }

    private func record(_ answer: PipelineAnswer, status: Int, requestID: RequestID, path: RecordedPath, elapsed: Duration, span: (any Span)?) {
        var problem: GatewayError?
        if case .problem(let error) = answer.content { problem = error }
        recorder.record(
            RequestRecorder.Entry(
                method: "GET", path: path, requestID: requestID, callerID: answer.callerID, status: status, cache: answer.cacheStatus?.rawValue,
                elapsed: elapsed, problem: problem, hotPath: true, span: span))
    }
}

/// What the hot path does with one request (``HotPathResponder/respond(to:arrived:now:peer:peerKey:scratch:allocator:)``).
enum HotPathDecision {
    /// Answered (a hit or a refusal): its bytes, a large body as its own buffer.
    case answered(head: ByteBuffer, largeBody: ByteBuffer?)
    /// The router's to serve; nothing was touched.
    case handOn
    /// Decided by the pipeline, to be served by its fill: nothing answered yet.
    case fill(HotPathMiss)
}

/// A request the pipeline resolved and only a fill can answer, with what the hot path writes
/// and records of it.
struct HotPathMiss: Sendable {
    let resolved: ResolvedRequest
    let ifNoneMatch: String?
    let path: RecordedPath
    /// When its bytes were read (nanoseconds on the connection's event loop's clock).
    let arrived: UInt64
    /// The request's server span (tracing on): the fill runs in it.
    let span: (any Span)?
}

/// A served miss's bytes: the head (and a small body), and a large body as its own buffer; the
/// status written and the pipeline's answer, for the record.
struct HotPathAnswer: Sendable {
    var head: ByteBuffer
    var largeBody: ByteBuffer?
    var status: Int
    var answer: PipelineAnswer
}
