import GatewayAccess
import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import ResponseCache
import NIOCore
import Synchronization

/// Decides and writes hot-path answers. Shared by every connection; all it touches is
/// thread-safe and synchronous (the configuration snapshot, `Mutex`-guarded cache and limiters).
struct HotPathResponder: Sendable {
    let state: SnapshotSource
    let logger: Logger
    let accessLog: AccessLog
    let metrics: GatewayMetrics
    let bodies = BodyBuffers()

    /// Decides `request`: answers it into `buffer` (a cache hit, or a refusal), hands it on having
    /// changed nothing anywhere (no limiter, counter or cache touched) so that the router can serve
    /// it as if the hot path did not exist, or — a single tenant that is not in the cache, or that
    /// an administrator's `no-cache` skips — admits it (its rate taken) for ``serve(_:)``.
    /// `peer` is the connection's peer address, `peerKey` its failed-authentication key (both
    /// worked out once per connection).
    func respond(
        to request: RawRequest, peer: String, peerKey: String, scratch: inout ConnectionScratch, into buffer: inout ByteBuffer, largeBody: inout ByteBuffer?
    ) -> HotPathDecision {
        let started = ContinuousClock.now
        let snapshot = state.snapshot
        let service = snapshot.service
        let access = snapshot.access
        // Requests the router would refuse before any upstream call (a malformed id or query, an
        // unknown upstream) are its to answer: nothing has been counted yet.
        let listQuery: TenantQuery?
        let location: TenantLocation?
        if let target = request.listTarget {
            guard let query = try? GatewayApplication.query(URI(target)) else { return .handOn }
            (listQuery, location) = (query, nil)
        } else if let id = request.tenantID, let found = service.locate(id) {
            (listQuery, location) = (nil, found)
        } else {
            return .handOn
        }

        // Admission, as the router's: the same function. The caller's rate is taken only once
        // this path knows it answers (a request handed on goes to the router, which takes it there).
        let presented = Admission.Presented(apiKey: request.apiKey, authorization: request.authorization, forwardedFor: request.forwardedFor)
        let client = Admission.client(presented, peer: peer, peerKey: peerKey, access: access)
        guard let outcome = Admission.decide(presented, client: client, access: access, takingRate: false) else { return .handOn }
        let requestID = request.requestID.flatMap { RequestIDAndAccessLog.isAcceptable($0) ? $0 : nil } ?? RequestIDs.make(using: &scratch.random)
        let caller: Caller
        do {
            guard let admitted = try Admission.caller(outcome) else {
                return refuse(scratch.date(), .authRequired, request, requestID: requestID, callerID: nil, started: started, into: &buffer)
            }
            caller = admitted
        } catch {
            return refuse(scratch.date(), error, request, requestID: requestID, callerID: nil, started: started, into: &buffer)
        }
        let bypass = CacheBypass.requested(request.cacheControl, caller: caller, policy: access.policy)

        // The policy's refusal, the cached answer, or a single tenant to fill.
        let decided: Result<CachedBody?, GatewayError>
        do {
            if let listQuery {
                // A list the cache does not hold, or one an administrator refreshes: the router's.
                guard !bypass, let list = service.cachedListAnswer(listQuery, caller: caller, policy: access.policy) else { return .handOn }
                decided = .success(CachedBody(body: list.body, etag: list.etag, age: list.age, maxAge: list.maxAge))
            } else if let location {
                if bypass {
                    try service.authorize(caller, at: location, policy: access.policy)
                    decided = .success(nil)
                } else {
                    decided = .success(try service.cachedTenantAnswer(at: location, caller: caller, policy: access.policy))
                }
            } else {
                return .handOn
            }
        } catch let error as GatewayError {
            decided = .failure(error)
        } catch {
            return .handOn
        }
        // Answered by this path, whatever it is: the request counts against the caller's rate first.
        if let wait = access.takeRate(caller) {
            return refuse(scratch.date(), .rateLimited(wait), request, requestID: requestID, callerID: caller.id, started: started, into: &buffer)
        }
        let answer: CachedBody
        switch decided {
        case .success(let found?): answer = found
        case .success(nil):
            guard let location else { return .handOn }
            return .fill(
                HotPathMiss(
                    snapshot: snapshot, location: location, caller: caller, bypass: bypass, requestID: requestID, ifNoneMatch: request.ifNoneMatch,
                    path: request.path, started: started))
        case .failure(let error): return refuse(scratch.date(), error, request, requestID: requestID, callerID: caller.id, started: started, into: &buffer)
        }
        let status = Self.writeCached(
            answer, cacheStatus: .hit, ifNoneMatch: request.ifNoneMatch, requestID: requestID, date: scratch.date(), into: &buffer,
            largeBody: &largeBody, bodies: bodies)
        finish(path: request.path, requestID: requestID, callerID: caller.id, status: status, started: started, cache: CacheStatus.hit.rawValue)
        return .answered
    }

    /// Serves an admitted miss (``HotPathDecision/fill(_:)``): the router's read of one tenant
    /// (the same ``TenantService/tenantAnswer(id:caller:policy:bypassCache:)``, under the request's
    /// id for upstream calls), written as the hot path writes a hit, or the problem the router
    /// would answer. Called in a task on the connection's event loop (``EventLoopTaskExecutor``).
    func serve(_ miss: HotPathMiss, date: String, allocator: ByteBufferAllocator) async -> HotPathAnswer {
        metrics.inFlight(1)
        var buffer = allocator.buffer(capacity: 2048)
        var largeBody: ByteBuffer?
        let status: Int
        var cache: String?
        do {
            let answer = try await RequestScope.$requestID.withValue(miss.requestID) {
                try await miss.snapshot.service.tenantAnswer(
                    id: miss.location.requested, caller: miss.caller, policy: miss.snapshot.access.policy, bypassCache: miss.bypass)
            }
            cache = answer.cacheStatus?.rawValue
            status = Self.writeCached(
                CachedBody(body: answer.body, etag: answer.etag, age: answer.age, maxAge: answer.maxAge), cacheStatus: answer.cacheStatus,
                ifNoneMatch: miss.ifNoneMatch, requestID: miss.requestID, date: date, into: &buffer, largeBody: &largeBody, bodies: bodies)
        } catch {
            let rendered = RequestIDAndAccessLog.render(
                RequestIDAndAccessLog.gatewayError(for: error, requestID: miss.requestID, logger: logger), method: "GET", path: miss.path,
                requestID: miss.requestID, caller: miss.caller.id, logger: logger, board: metrics.board)
            HTTP1Wire.write(rendered, date: date, into: &buffer)
            status = Int(rendered.status.code)
        }
        return HotPathAnswer(head: buffer, largeBody: largeBody, status: status, cache: cache)
    }

    /// Counts and logs a served miss, once its answer is written (its bookkeeping is not on the
    /// caller's way).
    func served(_ miss: HotPathMiss, _ answer: HotPathAnswer) {
        metrics.inFlight(-1)
        finish(path: miss.path, requestID: miss.requestID, callerID: miss.caller.id, status: answer.status, started: miss.started, cache: answer.cache)
    }

    /// A cached answer on the wire: the status line, ``CachedAnswerRendering``'s headers, then
    /// `X-Request-Id`, `Date` and `Content-Length` as the router's codec adds them, and the body
    /// (a large one as its own kept buffer). Returns the status written (200 or 304).
    static func writeCached(
        _ answer: CachedBody, cacheStatus: CacheStatus?, ifNoneMatch: String?, requestID: String, date: String, into buffer: inout ByteBuffer,
        largeBody: inout ByteBuffer?, bodies: BodyBuffers
    ) -> Int {
        let notModified = CachedAnswerRendering.notModified(ifNoneMatch: ifNoneMatch, etag: answer.etag)
        buffer.writeStaticString(notModified ? "HTTP/1.1 304 Not Modified\r\n" : "HTTP/1.1 200 OK\r\n")
        CachedAnswerRendering.headers(etag: answer.etag, maxAge: answer.maxAge, age: answer.age, cacheStatus: cacheStatus) { name, value in
            buffer.writeString(name.rawName)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("X-Request-Id: ")
        buffer.writeString(requestID)
        buffer.writeStaticString("\r\nDate: ")
        buffer.writeString(date)
        if notModified {
            buffer.writeStaticString("\r\n\r\n")
            return 304
        }
        buffer.writeStaticString("\r\nContent-Length: ")
        buffer.writeString(String(answer.body.count))
        buffer.writeStaticString("\r\n\r\n")
        if answer.body.count < BodyBuffers.threshold {
            buffer.writeBytes(answer.body)
        } else {
            largeBody = bodies.buffer(for: answer.etag, body: answer.body)
        }
        return 200
    }

    /// A refusal, rendered by the same function as the router's problem answers.
    private func refuse(
        _ date: String, _ error: GatewayError, _ request: RawRequest, requestID: String, callerID: String?, started: ContinuousClock.Instant, into buffer: inout ByteBuffer
    ) -> HotPathDecision {
        let answer = RequestIDAndAccessLog.render(
            error, method: "GET", path: request.path, requestID: requestID, caller: callerID, logger: logger, board: metrics.board)
        HTTP1Wire.write(answer, date: date, into: &buffer)
        finish(path: request.path, requestID: requestID, callerID: callerID, status: Int(answer.status.code), started: started)
        return .answered
    }

    private func finish(path: String, requestID: String, callerID: String?, status: Int, started: ContinuousClock.Instant, cache: String? = nil) {
        let elapsed = ContinuousClock.now - started
        metrics.request(route: MetricsMiddleware.route(path), method: "GET", status: status, duration: elapsed, cache: cache)
        metrics.hotPathAnswer(status: status)
        accessLog.record(requestID: requestID, method: "GET", path: path, caller: callerID, status: status, elapsed: elapsed)
    }
}

/// What the hot path does with one request (``HotPathResponder/respond(to:peer:peerKey:scratch:into:largeBody:)``).
enum HotPathDecision {
    /// Answered (a hit or a refusal): the bytes are in the buffer.
    case answered
    /// The router's to serve; nothing was touched.
    case handOn
    /// A single tenant to read through the cache: admitted, its rate taken, nothing answered yet.
    case fill(HotPathMiss)
}

/// An admitted single-tenant request the cache could not answer at once: everything
/// ``HotPathResponder/serve(_:date:allocator:)`` needs, taken when the request was decided (the
/// snapshot too, so a reload meanwhile does not change what it is served under).
struct HotPathMiss: Sendable {
    let snapshot: GatewaySnapshot
    let location: TenantLocation
    let caller: Caller
    /// An administrator's `no-cache`: skip the lookup and refresh the entry.
    let bypass: Bool
    let requestID: String
    let ifNoneMatch: String?
    let path: String
    let started: ContinuousClock.Instant
}

/// A served miss's bytes: the head (and a small body), and a large body as its own buffer; the
/// status and `X-Cache` written, for the metrics and the access log.
struct HotPathAnswer: Sendable {
    var head: ByteBuffer
    var largeBody: ByteBuffer?
    var status: Int
    var cache: String?
}

/// HTTP/1.1 serialization of a rendered answer, as Hummingbird's codec writes it (`Date` added,
/// `Content-Length` from the body).
enum HTTP1Wire {
    static func write(_ answer: RenderedResponse, date: String, into buffer: inout ByteBuffer) {
        var headers = answer.headers
        headers[.date] = date
        headers[.contentLength] = String(answer.body.count)
        buffer.writeString("HTTP/1.1 \(answer.status.code) \(answer.status.reasonPhrase)\r\n")
        for field in headers {
            buffer.writeString(field.name.rawName)
            buffer.writeStaticString(": ")
            buffer.writeString(field.value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
        buffer.writeBytes(answer.body)
    }
}

/// Large bodies (list pages) as `ByteBuffer`s, kept by ETag so that each answer writes the same
/// storage instead of copying hundreds of kilobytes. Bounded: at most 32 bodies.
final class BodyBuffers: Sendable {
    static let threshold = 16 * 1024
    private let buffers = Mutex<[String: ByteBuffer]>([:])

    func buffer(for etag: String, body: [UInt8]) -> ByteBuffer {
        if let known = buffers.withLock({ $0[etag] }) { return known }
        let made = ByteBuffer(bytes: body)
        buffers.withLock { known in
            if known.count >= 32 { known.removeAll() }
            known[etag] = made
        }
        return made
    }
}
