import GatewayAccess
import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
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

    /// Writes the full answer to `request` into `buffer` and returns true, or returns false
    /// having changed nothing anywhere (no limiter, counter or cache touched) so that the router
    /// can serve the request as if the hot path did not exist.
    /// `peer` is the connection's peer address, `peerKey` its failed-authentication key (both
    /// worked out once per connection).
    func respond(
        to request: RawRequest, peer: String, peerKey: String, scratch: inout ConnectionScratch, into buffer: inout ByteBuffer, largeBody: inout ByteBuffer?
    ) -> Bool {
        let started = ContinuousClock.now
        let snapshot = state.snapshot
        let service = snapshot.service
        let access = snapshot.access
        // Requests the router would refuse before any upstream call (a malformed id or query, an
        // unknown upstream) are its to answer: nothing has been counted yet.
        let listQuery: TenantQuery?
        let location: TenantLocation?
        if let target = request.listTarget {
            guard let query = try? GatewayApplication.query(URI(target)) else { return false }
            (listQuery, location) = (query, nil)
        } else if let id = request.tenantID, let found = service.locate(id) {
            (listQuery, location) = (nil, found)
        } else {
            return false
        }

        // Admission, as the router's: the same function. The caller's rate is taken only once
        // this path knows it answers (a miss goes to the router, which takes it there).
        let presented = Admission.Presented(apiKey: request.apiKey, authorization: request.authorization, forwardedFor: request.forwardedFor)
        let client = Admission.client(presented, peer: peer, peerKey: peerKey, access: access)
        guard let outcome = Admission.decide(presented, client: client, access: access, takingRate: false) else { return false }
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

        // The policy's refusal or the cached answer; a miss (nil) goes to the router untouched.
        let decided: Result<(body: [UInt8], etag: String, age: Int, maxAge: Int), GatewayError>
        do {
            let cached: (body: [UInt8], etag: String, age: Int, maxAge: Int)?
            if let listQuery {
                cached = service.cachedListAnswer(listQuery, caller: caller, policy: access.policy).map { ($0.body, $0.etag, $0.age, $0.maxAge) }
            } else if let location {
                cached = try service.cachedTenantAnswer(at: location, caller: caller, policy: access.policy).map { ($0.body, $0.etag, $0.age, $0.maxAge) }
            } else {
                cached = nil
            }
            // Not in the cache: the router serves it (and takes the rate there); nothing was taken here.
            guard let cached else { return false }
            decided = .success(cached)
        } catch let error as GatewayError {
            decided = .failure(error)
        } catch {
            return false
        }
        // Answered here, a hit or a refusal: the request counts against the caller's rate first.
        if let wait = access.takeRate(caller) {
            return refuse(scratch.date(), .rateLimited(wait), request, requestID: requestID, callerID: caller.id, started: started, into: &buffer)
        }
        let answer: (body: [UInt8], etag: String, age: Int, maxAge: Int)
        switch decided {
        case .success(let found): answer = found
        case .failure(let error): return refuse(scratch.date(), error, request, requestID: requestID, callerID: caller.id, started: started, into: &buffer)
        }

        let notModified = CachedAnswerRendering.notModified(ifNoneMatch: request.ifNoneMatch, etag: answer.etag)
        buffer.writeStaticString(notModified ? "HTTP/1.1 304 Not Modified\r\n" : "HTTP/1.1 200 OK\r\n")
        CachedAnswerRendering.headers(etag: answer.etag, maxAge: answer.maxAge, age: answer.age, cacheStatus: .hit) { name, value in
            buffer.writeString(name.rawName)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("X-Request-Id: ")
        buffer.writeString(requestID)
        buffer.writeStaticString("\r\nDate: ")
        buffer.writeString(scratch.date())
        if notModified {
            buffer.writeStaticString("\r\n\r\n")
        } else {
            buffer.writeStaticString("\r\nContent-Length: ")
            buffer.writeString(String(answer.body.count))
            buffer.writeStaticString("\r\n\r\n")
            if answer.body.count < BodyBuffers.threshold {
                buffer.writeBytes(answer.body)
            } else {
                largeBody = bodies.buffer(for: answer.etag, body: answer.body)
            }
        }
        finish(request, requestID: requestID, callerID: caller.id, status: notModified ? 304 : 200, started: started, cache: "HIT")
        return true
    }

    /// A refusal, rendered by the same function as the router's problem answers.
    private func refuse(_ date: String, _ error: GatewayError, _ request: RawRequest, requestID: String, callerID: String?, started: ContinuousClock.Instant, into buffer: inout ByteBuffer) -> Bool {
        let answer = RequestIDAndAccessLog.render(error, method: "GET", path: request.path, requestID: requestID, logger: logger, board: metrics.board)
        HTTP1Wire.write(answer, date: date, into: &buffer)
        finish(request, requestID: requestID, callerID: callerID, status: Int(answer.status.code), started: started)
        return true
    }

    private func finish(_ request: RawRequest, requestID: String, callerID: String?, status: Int, started: ContinuousClock.Instant, cache: String? = nil) {
        let elapsed = ContinuousClock.now - started
        metrics.request(route: MetricsMiddleware.route(request.path), method: "GET", status: status, duration: elapsed, cache: cache)
        metrics.hotPathAnswer(status: status)
        accessLog.record(requestID: requestID, method: "GET", path: request.path, caller: callerID, status: status, elapsed: elapsed)
    }
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
