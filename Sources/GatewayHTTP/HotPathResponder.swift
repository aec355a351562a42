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

        // Authentication, exactly as the `Authenticate` middleware does it.
        let remoteAddress = request.forwardedFor.map { access.clientAddresses.limiterKey(peer: peer, forwardedFor: $0) } ?? peerKey
        let presented = Authenticate.presentedKey(apiKey: request.apiKey, authorization: request.authorization)
        // Without a key or token the caller may be its client certificate: the router's to read.
        if presented == nil, access.directory.hasCertificateCallers { return false }
        let outcome: AccessControl.Outcome
        if let presented, AccessControl.looksLikeJWT(presented), request.authorization != nil {
            guard let decided = access.authenticateSynchronously(token: presented, address: remoteAddress) else { return false }
            outcome = decided
        } else {
            outcome = access.authenticate(apiKey: presented, address: remoteAddress)
        }
        let requestID = request.requestID.flatMap { RequestIDAndAccessLog.isAcceptable($0) ? $0 : nil } ?? RequestIDs.make(using: &scratch.random)
        let caller: Caller
        switch outcome {
        case .caller(let who):
            caller = who
        case .missing:
            return refuse(scratch.date(), .authRequired, request, requestID: requestID, callerID: nil, started: started, into: &buffer)
        case .invalid:
            return refuse(scratch.date(), .authInvalid, request, requestID: requestID, callerID: nil, started: started, into: &buffer)
        case .tooManyFailures(let seconds):
            return refuse(scratch.date(), .tooManyFailures(seconds), request, requestID: requestID, callerID: nil, started: started, into: &buffer)
        case .rateLimited(let seconds):
            return refuse(scratch.date(), .rateLimited(seconds), request, requestID: requestID, callerID: nil, started: started, into: &buffer)
        }

        let cached: (body: [UInt8], etag: String, age: Int, maxAge: Int)?
        do {
            if let listQuery {
                cached = service.cachedListAnswer(listQuery, caller: caller, policy: access.policy).map { ($0.body, $0.etag, $0.age, $0.maxAge) }
            } else if let location {
                cached = try service.cachedTenantAnswer(at: location, caller: caller, policy: access.policy).map { ($0.body, $0.etag, $0.age, $0.maxAge) }
            } else {
                cached = nil
            }
        } catch let error as GatewayError {
            return refuse(scratch.date(), error, request, requestID: requestID, callerID: caller.id, started: started, into: &buffer)
        } catch {
            cached = nil
        }
        guard let answer = cached else {
            // Not in the cache: the router takes its own rate token, so give this one back.
            access.rateLimiter.refund(caller.id, rate: access.rate(of: caller.id))
            return false
        }

        let notModified = request.ifNoneMatch.map { GatewayApplication.matches(ifNoneMatch: $0, etag: answer.etag) } ?? false
        buffer.writeStaticString(notModified ? "HTTP/1.1 304 Not Modified\r\n" : "HTTP/1.1 200 OK\r\n")
        buffer.writeStaticString("Content-Type: application/json\r\nETag: ")
        buffer.writeString(answer.etag)
        buffer.writeStaticString("\r\nCache-Control: private, max-age=")
        buffer.writeString(String(max(0, answer.maxAge)))
        buffer.writeStaticString("\r\nAge: ")
        buffer.writeString(String(answer.age))
        buffer.writeStaticString("\r\nX-Cache: HIT\r\nX-Request-Id: ")
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
        finish(request, requestID: requestID, callerID: caller.id, status: notModified ? 304 : 200, started: started)
        return true
    }

    /// A refusal, rendered by the same function as the router's problem answers.
    private func refuse(_ date: String, _ error: GatewayError, _ request: RawRequest, requestID: String, callerID: String?, started: ContinuousClock.Instant, into buffer: inout ByteBuffer) -> Bool {
        let answer = RequestIDAndAccessLog.render(error, path: request.path, requestID: requestID, logger: logger)
        HTTP1Wire.write(answer, date: date, into: &buffer)
        finish(request, requestID: requestID, callerID: callerID, status: Int(answer.status.code), started: started)
        return true
    }

    private func finish(_ request: RawRequest, requestID: String, callerID: String?, status: Int, started: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - started
        metrics.request(route: MetricsMiddleware.route(request.path), method: "GET", status: status, duration: elapsed)
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
