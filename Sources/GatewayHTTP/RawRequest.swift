import NIOCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import GatewayAccess
import GatewayTracing
import GatewayCore

/// The bounds on a request head, for every front end: over HTTP/1.1 the raw-bytes handler
/// refuses a head beyond them with ``exceeded`` (``HotPathHandler``, whether or not it answers
/// hits), over HTTP/2 ``HTTP2StreamGuard`` does. The router's HTTP/1.1 decoder has the same
/// bounds: it refuses (a bare 400, unrecorded) the heads the handler passes on unframed, and one
/// behind a request the router has not answered yet, so that answers keep their order.
enum RequestHeadLimits {
    /// Header fields per head.
    static let fieldCount = 100
    /// Bytes in one header field (name, colon and value).
    static let fieldSize = 16 * 1024
    /// Bytes in the whole head.
    static let headSize = 32 * 1024

    /// The problem a head beyond the bounds is answered with (431).
    static let exceeded = GatewayError(.httpProtocol(status: 431), detail: "The request head has too many or too large header fields.")
}

/// One request head framed from raw bytes: only what the hot path needs, and flags for anything
/// that sends the request to the router.
struct RawRequest {
    /// The tenant id when the target is `/v1/tenants/{id}` with a plain id (no query, no escapes).
    var tenantID: String?
    /// The whole target when it is the list, `/v1/tenants` with or without a query.
    var listTarget: String?
    /// The whole target when it is a pass-through (``PassThroughTarget/names(_:)``).
    var passThroughTarget: String?
    /// The target's path, when it is under `/v1/tenants` or `/v1/upstreams/` (else empty: not
    /// ours). For a tenant (``tenantID``) it is made from the id when asked for: a hit needs none.
    var path: String {
        if let tenantID { return RecordedPath.tenant(id: tenantID).text }
        return otherPath
    }
    /// The path of any target but a tenant's.
    private var otherPath = ""
    var apiKey: String?
    var authorization: String?
    var ifNoneMatch: String?
    var requestID: String?
    /// `X-Forwarded-For`, counted only when the peer is a trusted proxy.
    var forwardedFor: String?
    /// `Cache-Control` (``CacheBypass`` decides what it asks for).
    var cacheControl: String?
    /// W3C trace context (`traceparent`, `tracestate`), kept for the request's span.
    var traceparent: String?
    var tracestate: String?
    var contentLength = 0
    /// Something the hot path leaves to the router (another method or route, a repeated `Cache-Control`,
    /// `Connection: close`, HTTP/1.0, a repeated credential header, …).
    var needsRouter = false
    /// The head is beyond ``RequestHeadLimits``: refused, whoever would have served it.
    var headTooLarge = false

    /// A request line's method and target: what the record of a refused head names. Made only
    /// for a refusal, from the buffered bytes.
    struct RequestLine {
        var method: String
        var target: String

        /// The request line at the start of `buffer`, when its end is there.
        init?(_ buffer: ByteBuffer) {
            guard let parts = buffer.withUnsafeReadableBytes({ bytes -> [Substring]? in
                guard let end = bytes.firstIndex(of: 0x0D) else { return nil }
                let line = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[..<end]), as: UTF8.self)
                return line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            }), parts.count == 3 else { return nil }
            method = String(parts[0])
            target = String(parts[1])
        }
    }

    /// Length of the head including the blank line, when `buffer` holds all of it. `scanned` is
    /// where earlier calls on the same head stopped without finding its end (0 for a new head):
    /// the scan resumes there, so a head that arrives a byte at a time is examined once, not
    /// once per byte. It is left at the end of what this call examined; `examined` counts the
    /// positions this call looked at.
    static func headLength(_ buffer: ByteBuffer, scanned: inout Int, examined: inout Int) -> Int? {
        buffer.withUnsafeReadableBytes { bytes -> Int? in
            let start = max(3, scanned)
            var index = start
            defer { examined = max(0, index - start) }
            while index < bytes.count {
                if bytes[index] == 0x0A, bytes[index - 1] == 0x0D, bytes[index - 2] == 0x0A, bytes[index - 3] == 0x0D {
                    scanned = index + 1
                    index += 1
                    return scanned
                }
                index += 1
            }
            scanned = max(scanned, bytes.count)
            return nil
        }
    }

    /// Parses the head; nil when it is not one this handler frames with certainty (the codec
    /// then gets the rest of the connection). Works on the bytes: only the values the hot path
    /// uses become strings, and an API key that is the connection's remembered one (`remembered`,
    /// the last key it authenticated: ``PresentedKeyMemo/remembered``) is that key's string again.
    init?(_ buffer: ByteBuffer, headLength: Int, remembered: RememberedKey?) {
        guard
            let parsed = buffer.withUnsafeReadableBytes({ raw -> RawRequest? in
                RawRequest(head: UnsafeRawBufferPointer(rebasing: raw[0..<(headLength - 2)]), remembered: remembered)
            })
        else { return nil }
        self = parsed
    }

    /// Parses the head with no remembered key (every key becomes a new string).
    init?(_ buffer: ByteBuffer, headLength: Int) {
        self.init(buffer, headLength: headLength, remembered: nil)
    }

    private init() {}

    /// `head` is the request line and header lines, each ending in CRLF (the blank line excluded).
    private init?(head: UnsafeRawBufferPointer, remembered: RememberedKey?) {
        self.init()
        var lineStart = 0
        var index = 0
        var isRequestLine = true
        var seen: UInt8 = 0  // bit per credential-like header, to spot repeats
        var sawContentLength = false
        var fields = 0
        if head.count + 4 > RequestHeadLimits.headSize { headTooLarge = true }
        while index < head.count {
            // Eight bytes at a time while each is printable ASCII: nothing in them ends a line
            // or needs judging.
            if index + 8 <= head.count, Self.allPrintable(head.loadUnaligned(fromByteOffset: index, as: UInt64.self)) {
                index += 8
                continue
            }
            let byte = head[index]
            if byte == 0x0D {
                // CR must end a line: CRLF.
                guard index + 1 < head.count, head[index + 1] == 0x0A else { return nil }
                let line = UnsafeRawBufferPointer(rebasing: head[lineStart..<index])
                if isRequestLine {
                    guard parseRequestLine(line) else { return nil }
                    isRequestLine = false
                } else {
                    guard parseHeader(line, seen: &seen, sawContentLength: &sawContentLength, remembered: remembered) else { return nil }
                    fields += 1
                    if fields > RequestHeadLimits.fieldCount || line.count > RequestHeadLimits.fieldSize { headTooLarge = true }
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
        if tenantID == nil && listTarget == nil && passThroughTarget == nil { needsRouter = true }
    }

    private mutating func parseRequestLine(_ line: UnsafeRawBufferPointer) -> Bool {
        guard let firstSpace = Self.index(of: 0x20, in: line) else { return false }
        let rest = UnsafeRawBufferPointer(rebasing: line[(firstSpace + 1)...])
        guard let secondSpace = Self.index(of: 0x20, in: rest) else { return false }
        let method = UnsafeRawBufferPointer(rebasing: line[..<firstSpace])
        let target = UnsafeRawBufferPointer(rebasing: rest[..<secondSpace])
        let version = UnsafeRawBufferPointer(rebasing: rest[(secondSpace + 1)...])
        guard !method.isEmpty, !target.isEmpty, Self.index(of: 0x20, in: version) == nil else { return false }
        guard Self.equals(version, "HTTP/1.1") || Self.equals(version, "HTTP/1.0") else { return false }
        guard !Self.equals(method, "CONNECT") else { return false }
        if !Self.equals(method, "GET") || !Self.equals(version, "HTTP/1.1") { needsRouter = true }
        let pathEnd = Self.index(of: UInt8(ascii: "?"), in: target) ?? target.count
        let pathBytes = UnsafeRawBufferPointer(rebasing: target[..<pathEnd])
        let prefix: StaticString = "/v1/tenants"
        let upstreams: StaticString = "/v1/upstreams/"
        if Self.hasPrefix(pathBytes, upstreams) {
            // Below /v1/upstreams/: a pass-through, or the router's.
            otherPath = String(decoding: pathBytes, as: UTF8.self)
            notePassThrough(target)
            return true
        }
        // Under /v1/tenants: the path itself or below it (`/v1/tenantsX` is another path).
        guard Self.hasPrefix(pathBytes, prefix),
            pathBytes.count == prefix.utf8CodeUnitCount || pathBytes[prefix.utf8CodeUnitCount] == UInt8(ascii: "/")
        else { return true }
        if pathBytes.count == prefix.utf8CodeUnitCount {
            if Self.index(of: UInt8(ascii: "#"), in: target) == nil { listTarget = String(decoding: target, as: UTF8.self) }
        } else if pathEnd == target.count, pathBytes[prefix.utf8CodeUnitCount] == UInt8(ascii: "/") {
            let id = UnsafeRawBufferPointer(rebasing: pathBytes[(prefix.utf8CodeUnitCount + 1)...])
            if !id.isEmpty, id.count <= 70, id.allSatisfy(Self.isIDByte) { tenantID = String(decoding: id, as: UTF8.self) }
        }
        if tenantID == nil { otherPath = String(decoding: pathBytes, as: UTF8.self) }
        if tenantID == nil, listTarget == nil { notePassThrough(target) }
        return true
    }

    /// Keeps the target when it names a pass-through (a fragment is the router's to refuse).
    private mutating func notePassThrough(_ target: UnsafeRawBufferPointer) {
        guard Self.index(of: UInt8(ascii: "#"), in: target) == nil else { return }
        let text = String(decoding: target, as: UTF8.self)
        if PassThroughTarget.names(Substring(text)) { passThroughTarget = text }
    }

    private mutating func parseHeader(_ line: UnsafeRawBufferPointer, seen: inout UInt8, sawContentLength: inout Bool, remembered: RememberedKey?) -> Bool {
        // No whitespace inside or before the name, no obsolete line folding.
        guard let colon = Self.index(of: UInt8(ascii: ":"), in: line), colon > 0 else { return false }
        let name = UnsafeRawBufferPointer(rebasing: line[..<colon])
        guard name.allSatisfy(Self.isTokenByte) else { return false }
        var start = colon + 1
        var end = line.count
        while start < end, line[start] == 0x20 || line[start] == 0x09 { start += 1 }
        while end > start, line[end - 1] == 0x20 || line[end - 1] == 0x09 { end -= 1 }
        let value = UnsafeRawBufferPointer(rebasing: line[start..<end])
        /// The value as a string (`known`, when the caller already has it), noting a repeat.
        func remember(_ bit: UInt8, known: String? = nil) -> String {
            if seen & bit != 0 { needsRouter = true }
            seen |= bit
            return known ?? String(decoding: value, as: UTF8.self)
        }
        switch name.count {
        case 9 where Self.equalsIgnoringCase(name, "x-api-key"):
            apiKey = remember(1, known: remembered?.text(matching: value))
        case 13 where Self.equalsIgnoringCase(name, "authorization"):
            authorization = remember(2)
        case 13 where Self.equalsIgnoringCase(name, "if-none-match"):
            ifNoneMatch = remember(4)
        case 12 where Self.equalsIgnoringCase(name, "x-request-id"):
            requestID = remember(8)
        case 15 where Self.equalsIgnoringCase(name, "x-forwarded-for"):
            forwardedFor = remember(16)  // a repeat (a list in two fields) is the router's to join
        case 13 where Self.equalsIgnoringCase(name, "cache-control"):
            cacheControl = remember(32)  // a repeat is the router's to join
        // Kept only when the process traces: otherwise a caller's trace context costs nothing.
        case 11 where GatewayTracing.isOn && Self.equalsIgnoringCase(name, "traceparent"):
            traceparent = remember(64)
        case 10 where GatewayTracing.isOn && Self.equalsIgnoringCase(name, "tracestate"):
            tracestate = remember(128)  // a list in two fields is the router's to join
        case 6 where Self.equalsIgnoringCase(name, "expect"):
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

    /// Where `byte` first is in `bytes`, found with `memchr` (word at a time, where a generic
    /// `firstIndex(of:)` steps through an iterator byte by byte).
    static func index(of byte: UInt8, in bytes: UnsafeRawBufferPointer) -> Int? {
        guard let base = bytes.baseAddress, !bytes.isEmpty, let found = memchr(base, Int32(byte), bytes.count) else { return nil }
        return UnsafeRawPointer(found) - base
    }

    /// Whether each of the eight bytes in `word` is printable ASCII (0x20 through 0x7E), with
    /// no byte examined alone. Three tests over all eight lanes at once, each exact as a yes or
    /// no: a high bit set (0x80 and above); a lane below 0x20 (subtracting 0x20 from each lane
    /// borrows into its high bit only then, given the high bits are clear); a lane of 0x7F
    /// (adding 1 carries into its high bit only then).
    static func allPrintable(_ word: UInt64) -> Bool {
        let lanes: UInt64 = 0x0101_0101_0101_0101
        let high: UInt64 = 0x8080_8080_8080_8080
        let belowSpace = (word &- lanes &* 0x20) & ~word & high
        let delete = (word &+ lanes) & high
        return (word & high) | belowSpace | delete == 0
    }

    static func equals(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        bytes.count == text.utf8CodeUnitCount && hasPrefix(bytes, text)
    }

    /// Compared with `memcmp` (a generic `elementsEqual` walks the two byte by byte through
    /// iterators: on every request, for every literal compared).
    static func hasPrefix(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        let count = text.utf8CodeUnitCount
        guard bytes.count >= count else { return false }
        guard count > 0 else { return true }
        guard let base = bytes.baseAddress else { return false }
        return memcmp(base, text.utf8Start, count) == 0
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
