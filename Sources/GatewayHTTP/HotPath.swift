import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes
import Synchronization

// The hot path: authenticated cache hits answered on the event loop (DESIGN.md, "The hot path").
//
// A Hummingbird route costs a trip through the async request path for every request, which on
// this machine caps a fixed answer at about a quarter of nginx's rate. So a channel handler sits
// *ahead of the HTTP codec* and reads the raw bytes: a plain `GET /v1/tenants/{id}` whose caller
// it can authenticate synchronously and whose answer is fresh in the cache is answered right
// there, from the cached body, with the per-request headers spliced in. Everything else — other
// routes, misses, stale entries, bodies, anything unusual — is handed on, byte for byte, to the
// codec and the router, which fill the cache. Both paths make the same decisions with the same
// functions (``TenantService/cachedTenantAnswer(id:caller:policy:)``, ``AccessControl``), and
// `HotPathTests` compares their answers header by header.

/// Hummingbird's HTTP/1 child channel with ``HotPathHandler`` in front of its pipeline.
struct HotPathChannel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value
    let inner: HTTP1Channel
    let responder: HotPathResponder
    let idleTimeout: TimeAmount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let pipeline = channel.pipeline.syncOperations
            let hot = HotPathHandler(responder: responder, idleTimeout: idleTimeout)
            try pipeline.addHandler(hot, position: .first)
            let connectionState = try pipeline.handler(type: HTTPConnectionStateHandler.self)
            try pipeline.addHandler(ResponseCompletionObserver(hot: hot), position: .before(connectionState))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

/// Sees each response the router writes (as HTTP parts, after the router, before the codec) and
/// tells the hot-path handler when one is complete, so that it never answers a later request
/// ahead of an earlier one still being served.
final class ResponseCompletionObserver: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart
    let hot: HotPathHandler

    init(hot: HotPathHandler) {
        self.hot = hot
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let isEnd: Bool
        if case .end = unwrapOutboundIn(data) { isEnd = true } else { isEnd = false }
        context.write(data, promise: promise)  // first pass it on: the bytes of that response go out first
        if isEnd { hot.routedResponseCompleted() }
    }
}

/// The raw-bytes handler at the front of each connection. Frames HTTP/1.1 requests itself (only
/// the clean, common shape; anything else switches the connection to pass-through for good), and
/// for each complete request either answers it (``HotPathResponder``) or hands its exact bytes on.
/// Answers keep request order: while a handed-on request is unanswered, later ones are handed on
/// too. It also owns the keep-alive idle timeout, since requests it answers never reach the
/// router's connection-state handler.
final class HotPathHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// The largest request head it frames; beyond this the codec (with its own limits) decides.
    static let maxHead = 40 * 1024

    private let responder: HotPathResponder
    private let idleTimeout: TimeAmount
    private var pending: ByteBuffer?
    /// Requests handed to the router and not yet answered.
    private var routedInFlight = 0
    /// Body bytes of a handed-on request still to pass through.
    private var bodyRemaining = 0
    /// Set once the stream holds something it does not frame (chunked bodies, upgrades, odd
    /// syntax): from then on every byte goes to the codec, which is the authority.
    private var passThroughForever = false
    private var wroteAnswer = false
    private var lastActivity = NIODeadline.now()
    private var idleCheck: Scheduled<Void>?
    private var remoteAddress = "unknown"
    private var scratch = ConnectionScratch()

    init(responder: HotPathResponder, idleTimeout: TimeAmount) {
        self.responder = responder
        self.idleTimeout = idleTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        remoteAddress = context.channel.remoteAddress?.ipAddress ?? "unknown"
        if context.channel.isActive { scheduleIdleCheck(context, in: idleTimeout) }
    }

    func channelActive(context: ChannelHandlerContext) {
        remoteAddress = context.channel.remoteAddress?.ipAddress ?? "unknown"
        scheduleIdleCheck(context, in: idleTimeout)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleCheck?.cancel()
        idleCheck = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleCheck?.cancel()
        idleCheck = nil
        pending = nil
        context.fireChannelInactive()
    }

    /// Called by the observer once the router has written a whole response.
    func routedResponseCompleted() {
        routedInFlight = max(0, routedInFlight - 1)
        lastActivity = .now()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastActivity = .now()
        var bytes = unwrapInboundIn(data)
        if passThroughForever {
            context.fireChannelRead(data)
            return
        }
        if pending == nil || pending?.readableBytes == 0 {
            pending = bytes
        } else {
            if let reader = pending?.readerIndex, reader > 4096 { pending?.discardReadBytes() }
            pending?.writeBuffer(&bytes)
        }
        process(context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if wroteAnswer {
            wroteAnswer = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        context.fireUserInboundEventTriggered(event)
    }

    /// Frames and serves every complete request in `pending`.
    private func process(_ context: ChannelHandlerContext) {
        while var buffer = pending, buffer.readableBytes > 0 {
            if bodyRemaining > 0 {
                let count = min(bodyRemaining, buffer.readableBytes)
                if let slice = buffer.readSlice(length: count) { context.fireChannelRead(wrapInboundOut(slice)) }
                bodyRemaining -= count
                pending = buffer
                continue
            }
            guard let headLength = RawRequest.headLength(buffer) else {
                if buffer.readableBytes > Self.maxHead { handOverForever(context) }
                return  // wait for the rest of the head
            }
            guard let request = RawRequest(buffer, headLength: headLength) else {
                handOverForever(context)
                return
            }
            if routedInFlight == 0, request.contentLength == 0, !request.needsRouter {
                var answer = context.channel.allocator.buffer(capacity: 2048)
                var largeBody: ByteBuffer?
                if responder.respond(to: request, remoteAddress: remoteAddress, scratch: &scratch, into: &answer, largeBody: &largeBody) {
                    buffer.moveReaderIndex(forwardBy: headLength)
                    pending = buffer
                    context.write(wrapOutboundOut(.byteBuffer(answer)), promise: nil)
                    if let largeBody { context.write(wrapOutboundOut(.byteBuffer(largeBody)), promise: nil) }
                    wroteAnswer = true
                    continue
                }
            }
            // Hand this request's head on; its body (Content-Length) follows as it arrives.
            if let head = buffer.readSlice(length: headLength) { context.fireChannelRead(wrapInboundOut(head)) }
            routedInFlight += 1
            bodyRemaining = request.contentLength
            pending = buffer
        }
    }

    private func handOverForever(_ context: ChannelHandlerContext) {
        passThroughForever = true
        if let rest = pending, rest.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(rest)) }
        pending = nil
    }

    private func scheduleIdleCheck(_ context: ChannelHandlerContext, in delay: TimeAmount) {
        idleCheck?.cancel()
        idleCheck = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            idleCheck = nil
            let idleFor = NIODeadline.now() - lastActivity
            let quiet = routedInFlight == 0 && bodyRemaining == 0 && (pending?.readableBytes ?? 0) == 0
            if quiet, idleFor >= idleTimeout {
                context.close(promise: nil)
            } else {
                scheduleIdleCheck(context, in: quiet ? idleTimeout - idleFor : idleTimeout)
            }
        }
    }
}

/// One request head framed from raw bytes: only what the hot path needs, and flags for anything
/// that sends the request to the router.
struct RawRequest {
    /// The tenant id when the target is `/v1/tenants/{id}` with a plain id (no query, no escapes).
    var tenantID: String?
    /// The whole target when it is the list, `/v1/tenants` with or without a query.
    var listTarget: String?
    /// The target's path, when it is under `/v1/tenants` (else empty: not ours).
    var path: String
    var apiKey: String?
    var authorization: String?
    var ifNoneMatch: String?
    var requestID: String?
    var contentLength = 0
    /// Something the hot path leaves to the router (another method or route, `Cache-Control`,
    /// `Connection: close`, HTTP/1.0, a repeated credential header, …).
    var needsRouter = false

    /// Length of the head including the blank line, when `buffer` holds all of it.
    static func headLength(_ buffer: ByteBuffer) -> Int? {
        buffer.withUnsafeReadableBytes { bytes -> Int? in
            var index = 3
            while index < bytes.count {
                if bytes[index] == 0x0A, bytes[index - 1] == 0x0D, bytes[index - 2] == 0x0A, bytes[index - 3] == 0x0D { return index + 1 }
                index += 1
            }
            return nil
        }
    }

    /// Parses the head; nil when it is not one this handler frames with certainty (the codec
    /// then gets the rest of the connection). Works on the bytes: only the values the hot path
    /// uses become strings.
    init?(_ buffer: ByteBuffer, headLength: Int) {
        guard
            let parsed = buffer.withUnsafeReadableBytes({ raw -> RawRequest? in
                RawRequest(head: UnsafeRawBufferPointer(rebasing: raw[0..<(headLength - 2)]))
            })
        else { return nil }
        self = parsed
    }

    private init() {
        path = ""
    }

    /// `head` is the request line and header lines, each ending in CRLF (the blank line excluded).
    private init?(head: UnsafeRawBufferPointer) {
        self.init()
        var lineStart = 0
        var index = 0
        var isRequestLine = true
        var seen: UInt8 = 0  // bit per credential-like header, to spot repeats
        var sawContentLength = false
        while index < head.count {
            let byte = head[index]
            if byte == 0x0D {
                // CR must end a line: CRLF.
                guard index + 1 < head.count, head[index + 1] == 0x0A else { return nil }
                let line = UnsafeRawBufferPointer(rebasing: head[lineStart..<index])
                if isRequestLine {
                    guard parseRequestLine(line) else { return nil }
                    isRequestLine = false
                } else {
                    guard parseHeader(line, seen: &seen, sawContentLength: &sawContentLength) else { return nil }
                }
                index += 2
                lineStart = index
                continue
            }
            // Bare LF, NUL or other control bytes: all of it is the codec's to judge.
            if (byte < 0x20 && byte != 0x09) || byte == 0x7F { return nil }
            // Bytes beyond ASCII are framed here but judged by the router (as HTTPFields decode them).
            if byte >= 0x80 { needsRouter = true }
            index += 1
        }
        guard lineStart == head.count, !isRequestLine else { return nil }
        if tenantID == nil && listTarget == nil { needsRouter = true }
    }

    private mutating func parseRequestLine(_ line: UnsafeRawBufferPointer) -> Bool {
        guard let firstSpace = line.firstIndex(of: 0x20) else { return false }
        let rest = UnsafeRawBufferPointer(rebasing: line[(firstSpace + 1)...])
        guard let secondSpace = rest.firstIndex(of: 0x20) else { return false }
        let method = UnsafeRawBufferPointer(rebasing: line[..<firstSpace])
        let target = UnsafeRawBufferPointer(rebasing: rest[..<secondSpace])
        let version = UnsafeRawBufferPointer(rebasing: rest[(secondSpace + 1)...])
        guard !method.isEmpty, !target.isEmpty, !version.contains(0x20) else { return false }
        guard Self.equals(version, "HTTP/1.1") || Self.equals(version, "HTTP/1.0") else { return false }
        guard !Self.equals(method, "CONNECT") else { return false }
        if !Self.equals(method, "GET") || !Self.equals(version, "HTTP/1.1") { needsRouter = true }
        let pathEnd = target.firstIndex(of: UInt8(ascii: "?")) ?? target.count
        let pathBytes = UnsafeRawBufferPointer(rebasing: target[..<pathEnd])
        let prefix: StaticString = "/v1/tenants"
        guard Self.hasPrefix(pathBytes, prefix) else { return true }
        path = String(decoding: pathBytes, as: UTF8.self)
        if pathBytes.count == prefix.utf8CodeUnitCount {
            if !target.contains(UInt8(ascii: "#")) { listTarget = String(decoding: target, as: UTF8.self) }
        } else if pathEnd == target.count, pathBytes[prefix.utf8CodeUnitCount] == UInt8(ascii: "/") {
            let id = UnsafeRawBufferPointer(rebasing: pathBytes[(prefix.utf8CodeUnitCount + 1)...])
            if !id.isEmpty, id.count <= 70, id.allSatisfy(Self.isIDByte) { tenantID = String(decoding: id, as: UTF8.self) }
        }
        return true
    }

    private mutating func parseHeader(_ line: UnsafeRawBufferPointer, seen: inout UInt8, sawContentLength: inout Bool) -> Bool {
        // No whitespace inside or before the name, no obsolete line folding.
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0 else { return false }
        let name = UnsafeRawBufferPointer(rebasing: line[..<colon])
        guard name.allSatisfy(Self.isTokenByte) else { return false }
        var start = colon + 1
        var end = line.count
        while start < end, line[start] == 0x20 || line[start] == 0x09 { start += 1 }
        while end > start, line[end - 1] == 0x20 || line[end - 1] == 0x09 { end -= 1 }
        let value = UnsafeRawBufferPointer(rebasing: line[start..<end])
        func remember(_ bit: UInt8) -> String {
            if seen & bit != 0 { needsRouter = true }
            seen |= bit
            return String(decoding: value, as: UTF8.self)
        }
        switch name.count {
        case 9 where Self.equalsIgnoringCase(name, "x-api-key"):
            apiKey = remember(1)
        case 13 where Self.equalsIgnoringCase(name, "authorization"):
            authorization = remember(2)
        case 13 where Self.equalsIgnoringCase(name, "if-none-match"):
            ifNoneMatch = remember(4)
        case 12 where Self.equalsIgnoringCase(name, "x-request-id"):
            requestID = remember(8)
        case 13 where Self.equalsIgnoringCase(name, "cache-control"), 6 where Self.equalsIgnoringCase(name, "expect"):
            needsRouter = true
        case 10 where Self.equalsIgnoringCase(name, "connection"):
            if !Self.equalsIgnoringCase(value, "keep-alive") { needsRouter = true }
        case 7 where Self.equalsIgnoringCase(name, "upgrade"), 17 where Self.equalsIgnoringCase(name, "transfer-encoding"):
            return false
        case 14 where Self.equalsIgnoringCase(name, "content-length"):
            guard !sawContentLength, !value.isEmpty, value.count <= 12, value.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
            sawContentLength = true
            contentLength = value.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        default:
            break
        }
        return true
    }

    static func equals(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        bytes.count == text.utf8CodeUnitCount && bytes.elementsEqual(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    static func hasPrefix(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        bytes.count >= text.utf8CodeUnitCount
            && UnsafeRawBufferPointer(rebasing: bytes[..<text.utf8CodeUnitCount]).elementsEqual(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// ASCII case-insensitive comparison with a lowercase literal.
    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        let literal = UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
        for i in 0..<bytes.count {
            let b = bytes[i]
            if (b >= 0x41 && b <= 0x5A ? b | 0x20 : b) != literal[i] { return false }
        }
        return true
    }

    static func isIDByte(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2D || byte == 0x2E
    }

    /// RFC 9110 `tchar`.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        if isIDByte(byte) { return true }
        switch byte {
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "*"),
            UInt8(ascii: "+"), UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}

/// Decides and writes hot-path answers. Shared by every connection; all it touches is
/// thread-safe and synchronous (the configuration snapshot, `Mutex`-guarded cache and limiters).
struct HotPathResponder: Sendable {
    let state: GatewayState
    let logger: Logger
    let metrics: GatewayMetrics
    let bodies = BodyBuffers()

    /// Writes the full answer to `request` into `buffer` and returns true, or returns false
    /// having changed nothing anywhere (no limiter, counter or cache touched) so that the router
    /// can serve the request as if the hot path did not exist.
    func respond(to request: RawRequest, remoteAddress: String, scratch: inout ConnectionScratch, into buffer: inout ByteBuffer, largeBody: inout ByteBuffer?) -> Bool {
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
        let presented: String?
        if let key = request.apiKey {
            presented = key
        } else if let authorization = request.authorization {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            presented = parts.count == 2 && parts[0].lowercased() == "bearer" ? String(parts[1]).trimmingCharacters(in: .whitespaces) : ""
        } else {
            presented = nil
        }
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
        RequestIDAndAccessLog.logAccess(
            logger, requestID: requestID, method: "GET", path: request.path, caller: callerID, status: status, elapsed: elapsed)
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

/// Request ids for requests that bring none: random UUIDs (version 4) from a generator seeded
/// once from the system's, so that making one costs no system call (`UUID()` opens
/// `/dev/urandom` each time on Linux). They identify requests in logs; they are not secrets.
enum RequestIDs {
    private static let generator = Mutex(Xoshiro256StarStar())

    static func make() -> String {
        let (random1, random2) = generator.withLock { ($0.next(), $0.next()) }
        return format(random1, random2)
    }

    /// With a generator of the caller's (no lock).
    static func make(using random: inout Xoshiro256StarStar) -> String {
        format(random.next(), random.next())
    }

    static func format(_ random1: UInt64, _ random2: UInt64) -> String {
        let high = (random1 & ~0xF000) | 0x4000  // version 4: byte 6's high nibble
        let low = (random2 & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000  // variant 10: byte 8's top bits
        let hex = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(36)
        for index in 0..<16 {
            if index == 4 || index == 6 || index == 8 || index == 10 { text.append(UInt8(ascii: "-")) }
            let word = index < 8 ? high : low
            let byte = UInt8(truncatingIfNeeded: word >> UInt64(56 - (index % 8) * 8))
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

/// xoshiro256** (Blackman and Vigna), seeded from `SystemRandomNumberGenerator`.
struct Xoshiro256StarStar: RandomNumberGenerator {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    init() {
        var system = SystemRandomNumberGenerator()
        state = (system.next(), system.next(), system.next(), system.next())
        if state == (0, 0, 0, 0) { state.0 = 1 }
    }

    mutating func next() -> UInt64 {
        let result = rotate(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotate(state.3, 45)
        return result
    }

    private func rotate(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}

/// Per-connection state of the hot path that would otherwise need a lock shared by every
/// connection: the `Date` value of the current second and a request-id generator.
struct ConnectionScratch {
    var random = Xoshiro256StarStar()
    private var dateSecond = -1
    private var dateText = ""

    /// The `Date` header value (IMF-fixdate), formatted once per second.
    mutating func date() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        if now.tv_sec != dateSecond {
            dateSecond = now.tv_sec
            dateText = HTTPDate.format(now.tv_sec)
        }
        return dateText
    }
}

enum HTTPDate {
    static func format(_ seconds: Int) -> String {
        var time = seconds
        var parts = tm()
        gmtime_r(&time, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
