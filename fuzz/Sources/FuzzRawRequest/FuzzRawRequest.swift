// libFuzzer target: the hot path's raw-bytes HTTP/1 framer (`RawRequest`).
//
// The input is what a client writes on a connection. It is framed the way `HotPathHandler`
// frames it (find a head, parse it, skip its Content-Length body, go on with the next head), and
// at every step these must hold:
//
// - `headLength` never exceeds the readable bytes, ends exactly on the first CRLF CRLF, and finds
//   the same end whether the bytes arrive at once, in three chunks split at input-derived points,
//   or (up to 4 KiB) a byte at a time through `scanned`; across the calls each position is examined at most once.
// - The same bytes behind a consumed prefix (a nonzero reader index) frame and parse alike.
// - `RawRequest.init?` agrees field for field with an independent reference framer written from
//   the type's documented rules (below): whether it refuses the head, the path, tenant id, list
//   and pass-through targets (substrings of the request target), the credential and cache headers, Content-Length
//   `needsRouter`, and `headTooLarge` (beyond the head bounds: refused by the handler).
// - Structural facts that hold whatever the rules: `tenantID` and `listTarget` never both set, a
//   tenant id is `path` minus `/v1/tenants/`, a request the hot path would answer itself
//   (`needsRouter == false`, within the bounds) is a plain ASCII `GET … HTTP/1.1` for one of its
//   routes (a tenant, the list, a pass-through).
//
// A violation prints what differed and aborts, which libFuzzer reports as a crash.

@testable import GatewayHTTP
import NIOCore
import FuzzerDriver

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's `main` (SwiftPM links `main` to `FuzzRawRequest_main`): libFuzzer's driver.
@_cdecl("FuzzRawRequest_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    fuzzer_driver_run(argc, argv) { data, size in data.map { fuzzOne($0, size) } ?? 0 }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    checkHeadLength(bytes)
    frameConnection(bytes)
    return 0
}

// MARK: - Failing

func fail(_ message: String, _ bytes: [UInt8]) -> Never {
    let shown = bytes.prefix(512).map { $0 >= 0x20 && $0 < 0x7F ? String(UnicodeScalar($0)) : "\\x" + hex($0) }.joined()
    let report = "FuzzRawRequest invariant violated: \(message)\n  input (\(bytes.count) bytes): \(shown)\n"
    _ = report.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    abort()
}

func hex(_ byte: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
}

func check(_ condition: Bool, _ message: @autoclosure () -> String, _ bytes: [UInt8]) {
    if !condition { fail(message(), bytes) }
}

// MARK: - headLength

/// The first CRLF CRLF's end, by a plain search.
func referenceHeadEnd(_ bytes: [UInt8]) -> Int? {
    guard bytes.count >= 4 else { return nil }
    for end in 4...bytes.count where bytes[end - 4] == 0x0D && bytes[end - 3] == 0x0A && bytes[end - 2] == 0x0D && bytes[end - 1] == 0x0A {
        return end
    }
    return nil
}

func buffer(_ bytes: some Sequence<UInt8>, prefix: Int = 0) -> ByteBuffer {
    var buffer = ByteBufferAllocator().buffer(capacity: prefix + 64)
    buffer.writeRepeatingByte(0x41, count: prefix)
    buffer.writeBytes(bytes)
    buffer.moveReaderIndex(forwardBy: prefix)
    return buffer
}

/// FNV-1a: split points that differ from input to input but repeat for the same input.
func fnv(_ bytes: [UInt8]) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
    return hash
}

/// One scan as the hot path does it: `scanned` carried between calls on a growing buffer.
struct Scan {
    var scanned = 0
    var examinedTotal = 0
    var calls = 0

    mutating func step(_ buffer: ByteBuffer, _ input: [UInt8]) -> Int? {
        var examined = -1
        let before = scanned
        let result = RawRequest.headLength(buffer, scanned: &scanned, examined: &examined)
        calls += 1
        check(examined >= 0, "examined was not set (\(examined))", input)
        examinedTotal += examined
        if let result {
            check(result >= 4 && result <= buffer.readableBytes, "headLength \(result) outside 4...\(buffer.readableBytes)", input)
            check(scanned == result, "scanned \(scanned) != headLength \(result) after a hit", input)
        } else {
            check(scanned == max(before, buffer.readableBytes), "scanned \(scanned) after a miss on \(buffer.readableBytes) bytes (was \(before))", input)
        }
        return result
    }
}

func checkHeadLength(_ input: [UInt8]) {
    let expected = referenceHeadEnd(input)
    let n = input.count
    // Each position from 3 on is looked at once at most, however the bytes arrive.
    let examinedBound = max(0, n - 3)

    // At once.
    var once = Scan()
    let whole = once.step(buffer(input), input)
    check(whole == expected, "one-shot headLength \(String(describing: whole)) != first CRLFCRLF end \(String(describing: expected))", input)
    check(once.examinedTotal <= examinedBound, "one-shot examined \(once.examinedTotal) > \(examinedBound)", input)

    // Behind a consumed prefix (the hot path's buffer after an earlier request).
    var shifted = Scan()
    let behind = shifted.step(buffer(input, prefix: 7), input)
    check(behind == expected, "headLength behind a consumed prefix \(String(describing: behind)) != \(String(describing: expected))", input)

    // In three chunks, split at input-derived points, on one growing buffer.
    let hash = fnv(input)
    var a = n == 0 ? 0 : Int(hash % UInt64(n + 1))
    var b = n == 0 ? 0 : Int((hash >> 32) % UInt64(n + 1))
    if a > b { swap(&a, &b) }
    var chunked = Scan()
    var growing = ByteBufferAllocator().buffer(capacity: n)
    var found: Int?
    for cut in [a, b, n] where found == nil {
        growing.writeBytes(input[growing.readableBytes..<cut])
        found = chunked.step(growing, input)
        if let found {
            check(found <= cut, "chunked headLength \(found) beyond the \(cut) bytes written", input)
        }
    }
    check(found == expected, "chunked (\(a), \(b), \(n)) headLength \(String(describing: found)) != one-shot \(String(describing: expected))", input)
    check(chunked.examinedTotal <= examinedBound, "chunked examined \(chunked.examinedTotal) positions > \(examinedBound)", input)

    // A byte at a time, up to the head's end (a slow client; kept to modest inputs).
    if n <= 4096 {
        var trickle = Scan()
        var slow = ByteBufferAllocator().buffer(capacity: n)
        var end: Int?
        for byte in input where end == nil {
            slow.writeInteger(byte)
            end = trickle.step(slow, input)
        }
        check(end == expected, "byte-at-a-time headLength \(String(describing: end)) != \(String(describing: expected))", input)
        check(trickle.examinedTotal <= examinedBound, "byte-at-a-time examined \(trickle.examinedTotal) positions > \(examinedBound)", input)
    }
}

// MARK: - Framing a connection

func frameConnection(_ input: [UInt8]) {
    var stream = buffer(input)
    var heads = 0
    while stream.readableBytes > 0, heads < 64 {
        var scanned = 0
        var examined = 0
        guard let headLength = RawRequest.headLength(stream, scanned: &scanned, examined: &examined) else { return }
        heads += 1
        let head = Array(stream.readableBytesView.prefix(headLength))
        let parsed = RawRequest(stream, headLength: headLength)
        // The same head alone in its own buffer, behind a consumed prefix, parses alike.
        let alone = RawRequest(buffer(head, prefix: 5), headLength: headLength)
        check(same(parsed, alone), "the head parses differently behind a consumed prefix", head)
        let reference = ReferenceRequest(head: Array(head[..<(headLength - 2)]))
        compare(parsed, reference, head)
        if let parsed { checkStructure(parsed, head) }
        guard let parsed else { return }  // the codec gets the rest of the connection
        stream.moveReaderIndex(forwardBy: headLength)
        // Its body follows (the hot path forwards it); then the next head.
        let body = min(parsed.contentLength, stream.readableBytes)
        stream.moveReaderIndex(forwardBy: body)
    }
}

func same(_ a: RawRequest?, _ b: RawRequest?) -> Bool {
    switch (a, b) {
    case (nil, nil): return true
    case (let a?, let b?): return Fields(a) == Fields(b)
    default: return false
    }
}

/// What `RawRequest` exposes, comparable.
struct Fields: Equatable, CustomStringConvertible {
    var tenantID: String?
    var listTarget: String?
    var passThroughTarget: String?
    var path: String
    var apiKey: String?
    var authorization: String?
    var ifNoneMatch: String?
    var requestID: String?
    var forwardedFor: String?
    var cacheControl: String?
    var contentLength: Int
    var needsRouter: Bool
    var headTooLarge: Bool

    init(_ r: RawRequest) {
        tenantID = r.tenantID
        listTarget = r.listTarget
        passThroughTarget = r.passThroughTarget
        path = r.path
        apiKey = r.apiKey
        authorization = r.authorization
        ifNoneMatch = r.ifNoneMatch
        requestID = r.requestID
        forwardedFor = r.forwardedFor
        cacheControl = r.cacheControl
        contentLength = r.contentLength
        needsRouter = r.needsRouter
        headTooLarge = r.headTooLarge
    }

    init(_ r: ReferenceRequest) {
        tenantID = r.tenantID
        listTarget = r.listTarget
        passThroughTarget = r.passThroughTarget
        path = r.path
        apiKey = r.apiKey
        authorization = r.authorization
        ifNoneMatch = r.ifNoneMatch
        requestID = r.requestID
        forwardedFor = r.forwardedFor
        cacheControl = r.cacheControl
        contentLength = r.contentLength
        needsRouter = r.needsRouter
        headTooLarge = r.headTooLarge
    }

    /// Byte for byte (String's == would take canonically equivalent text as equal).
    static func == (a: Fields, b: Fields) -> Bool {
        func bytes(_ f: Fields) -> [[UInt8]?] {
            [f.tenantID, f.listTarget, f.passThroughTarget, f.path, f.apiKey, f.authorization, f.ifNoneMatch, f.requestID, f.forwardedFor, f.cacheControl].map { $0.map { Array($0.utf8) } }
        }
        return bytes(a) == bytes(b) && a.contentLength == b.contentLength && a.needsRouter == b.needsRouter && a.headTooLarge == b.headTooLarge
    }

    var description: String {
        "tenantID=\(String(describing: tenantID)) listTarget=\(String(describing: listTarget)) "
            + "passThroughTarget=\(String(describing: passThroughTarget)) path=\(path) apiKey=\(String(describing: apiKey)) "
            + "authorization=\(String(describing: authorization)) ifNoneMatch=\(String(describing: ifNoneMatch)) requestID=\(String(describing: requestID)) "
            + "forwardedFor=\(String(describing: forwardedFor)) cacheControl=\(String(describing: cacheControl)) contentLength=\(contentLength) needsRouter=\(needsRouter) headTooLarge=\(headTooLarge)"
    }
}

func compare(_ parsed: RawRequest?, _ reference: ReferenceRequest?, _ head: [UInt8]) {
    switch (parsed, reference) {
    case (nil, nil):
        return
    case (nil, let reference?):
        fail("RawRequest refused a head the reference frames: \(Fields(reference))", head)
    case (let parsed?, nil):
        fail("RawRequest framed a head the reference refuses: \(Fields(parsed))", head)
    case (let parsed?, let reference?):
        let got = Fields(parsed)
        let want = Fields(reference)
        check(got == want, "fields differ\n  RawRequest: \(got)\n  reference:  \(want)", head)
    }
}

func checkStructure(_ r: RawRequest, _ head: [UInt8]) {
    let prefix = "/v1/tenants"
    // The request target: between the first two spaces of the first line.
    let line = head.prefix { $0 != 0x0D }
    let parts = line.split(separator: 0x20, maxSplits: 2, omittingEmptySubsequences: false)
    check(parts.count == 3, "a framed request line without three parts", head)
    let method = Array(parts[0])
    let target = Array(parts[1])
    let version = Array(parts[2])
    check(!(r.tenantID != nil && r.listTarget != nil), "tenantID and listTarget both set", head)
    // Compared as bytes: String's own == and hasPrefix compare characters, and a combining mark
    // after `/v1/tenants` makes its last character another one.
    if !r.path.isEmpty {
        check(
            r.path.utf8.elementsEqual(prefix.utf8) || r.path.utf8.starts(with: (prefix + "/").utf8) || r.path.utf8.starts(with: "/v1/upstreams/".utf8),
            "path \(r.path) outside /v1/tenants and /v1/upstreams/", head)
        // Lossless: the target's bytes were valid UTF-8, or the request goes to the router.
        if Array(r.path.utf8) != Array(target.prefix(r.path.utf8.count)) {
            check(r.needsRouter, "path \(r.path) is not a prefix of the target, and the hot path would answer", head)
        }
    } else {
        check(r.tenantID == nil && r.listTarget == nil && r.passThroughTarget == nil, "a route without a path", head)
    }
    if let id = r.tenantID {
        check(r.path.utf8.elementsEqual((prefix + "/" + id).utf8), "tenantID \(id) is not the path's last segment (\(r.path))", head)
        check((1...70).contains(id.utf8.count) && id.utf8.allSatisfy(RawRequest.isIDByte), "tenantID \(id) has bytes outside [A-Za-z0-9.-] or a bad length", head)
        check(Array(target) == Array((prefix + "/" + id).utf8), "tenantID \(id) but the target has more than the path", head)
    }
    if let list = r.listTarget {
        check(r.path.utf8.elementsEqual(prefix.utf8), "listTarget \(list) with path \(r.path)", head)
        check(Array(list.utf8) == target || r.needsRouter, "listTarget \(list) is not the whole target", head)
        check(!list.utf8.contains(UInt8(ascii: "#")), "listTarget with a fragment", head)
    }
    check(r.contentLength >= 0 && r.contentLength <= 999_999_999_999, "contentLength \(r.contentLength)", head)
    if !r.needsRouter && !r.headTooLarge {
        check(r.tenantID != nil || r.listTarget != nil || r.passThroughTarget != nil, "the hot path would answer a route that is not its own", head)
        check(method == Array("GET".utf8) && version == Array("HTTP/1.1".utf8), "the hot path would answer a method or version other than GET HTTP/1.1", head)
        check(head.allSatisfy { $0 < 0x80 }, "the hot path would answer a head with non-ASCII bytes", head)
        check(head.count <= RequestHeadLimits.headSize, "the hot path would answer a head of \(head.count) bytes", head)
    }
}

// MARK: - The reference framer

/// An independent reading of `RawRequest`'s documented rules, over arrays and splits rather than
/// one pass over a raw buffer: nil where the hot path must hand the connection to the codec.
struct ReferenceRequest {
    var tenantID: String?
    var listTarget: String?
    var path = ""
    var passThroughTarget: String?
    var apiKey: String?
    var authorization: String?
    var ifNoneMatch: String?
    var requestID: String?
    var forwardedFor: String?
    var cacheControl: String?
    var contentLength = 0
    var needsRouter = false
    var headTooLarge = false

    static let cr: UInt8 = 0x0D
    static let lf: UInt8 = 0x0A

    /// `head`: the request line and header lines, each with its CRLF (the blank line excluded).
    init?(head: [UInt8]) {
        // Every CR is half of a CRLF, every LF the other half; no other control byte but HTAB.
        for (i, byte) in head.enumerated() {
            switch byte {
            case Self.cr: guard i + 1 < head.count, head[i + 1] == Self.lf else { return nil }
            case Self.lf: guard i > 0, head[i - 1] == Self.cr else { return nil }
            case 0x09: break
            case 0x00..<0x20, 0x7F: return nil
            default: break
            }
        }
        guard head.count >= 2, head.suffix(2) == [Self.cr, Self.lf] else { return nil }
        let lines = Self.lines(Array(head.dropLast(2)))
        if head.count + 4 > 32 * 1024 { headTooLarge = true }
        if head.contains(where: { $0 >= 0x80 }) { needsRouter = true }
        guard requestLine(lines[0]) else { return nil }
        var counts: [String: Int] = [:]
        var sawContentLength = false
        for (index, line) in lines.dropFirst().enumerated() {
            if index + 1 > 100 || line.count > 16 * 1024 { headTooLarge = true }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0 else { return nil }
            let name = line[..<colon]
            guard name.allSatisfy(Self.isTchar) else { return nil }
            let lowered = String(decoding: name.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }, as: UTF8.self)
            let value = Self.trimmed(Array(line[(colon + 1)...]))
            let text = String(decoding: value, as: UTF8.self)
            counts[lowered, default: 0] += 1
            let repeated = counts[lowered]! > 1
            switch lowered {
            case "x-api-key": apiKey = text
            case "authorization": authorization = text
            case "if-none-match": ifNoneMatch = text
            case "x-request-id": requestID = text
            case "x-forwarded-for": forwardedFor = text
            case "cache-control": cacheControl = text
            case "expect": needsRouter = true
            case "connection":
                if value.map({ $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }) != Array("keep-alive".utf8) { needsRouter = true }
            case "upgrade", "transfer-encoding": return nil
            case "content-length":
                guard !sawContentLength, (1...12).contains(value.count), value.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
                sawContentLength = true
                contentLength = Int(String(decoding: value, as: UTF8.self))!
            default: break
            }
            if repeated, ["x-api-key", "authorization", "if-none-match", "x-request-id", "x-forwarded-for", "cache-control"].contains(lowered) {
                needsRouter = true
            }
        }
        if tenantID == nil && listTarget == nil && passThroughTarget == nil { needsRouter = true }
    }

    /// Splits on CRLF (the head holds no lone CR or LF by now).
    static func lines(_ bytes: [UInt8]) -> [[UInt8]] {
        var lines: [[UInt8]] = [[]]
        var i = 0
        while i < bytes.count {
            if bytes[i] == cr {
                lines.append([])
                i += 2
            } else {
                lines[lines.count - 1].append(bytes[i])
                i += 1
            }
        }
        return lines
    }

    /// `method SP target SP version`: exactly two spaces' worth of structure, nothing empty.
    mutating func requestLine(_ line: [UInt8]) -> Bool {
        let parts = line.split(separator: 0x20, maxSplits: 2, omittingEmptySubsequences: false).map(Array.init)
        guard parts.count == 3 else { return false }
        let (method, target, version) = (parts[0], parts[1], parts[2])
        guard !method.isEmpty, !target.isEmpty else { return false }
        guard version == Array("HTTP/1.1".utf8) || version == Array("HTTP/1.0".utf8), method != Array("CONNECT".utf8) else { return false }
        if method != Array("GET".utf8) || version != Array("HTTP/1.1".utf8) { needsRouter = true }
        let pathBytes = Array(target.prefix { $0 != UInt8(ascii: "?") })
        let base = Array("/v1/tenants".utf8)
        // Below `/v1/upstreams/`: kept as the path, a pass-through or the router's.
        if pathBytes.starts(with: Array("/v1/upstreams/".utf8)) {
            path = String(decoding: pathBytes, as: UTF8.self)
            notePassThrough(target)
            return true
        }
        // Ours: `/v1/tenants` itself or below it (`/v1/tenantsX` is another path).
        guard pathBytes == base || pathBytes.starts(with: base + [UInt8(ascii: "/")]) else { return true }
        path = String(decoding: pathBytes, as: UTF8.self)
        defer { if tenantID == nil && listTarget == nil { notePassThrough(target) } }
        let hasQuery = pathBytes.count < target.count
        if pathBytes == base {
            if !target.contains(UInt8(ascii: "#")) { listTarget = String(decoding: target, as: UTF8.self) }
        } else if !hasQuery, pathBytes[base.count] == UInt8(ascii: "/") {
            let id = pathBytes[(base.count + 1)...]
            if (1...70).contains(id.count), id.allSatisfy(Self.isIDByte) { tenantID = String(decoding: id, as: UTF8.self) }
        }
        return true
    }

    /// A pass-through target (docs/api.md): no fragment; its path `/v1/tenants/{id}/api/…` or
    /// `/v1/upstreams/{name}/api/…`, the segment not empty; compared as text, as the routes do.
    mutating func notePassThrough(_ target: [UInt8]) {
        guard !target.contains(UInt8(ascii: "#")) else { return }
        let text = String(decoding: target, as: UTF8.self)
        let path = text.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        var rest: Substring
        if path.hasPrefix("/v1/tenants/") {
            rest = path.dropFirst("/v1/tenants/".count)
        } else if path.hasPrefix("/v1/upstreams/") {
            rest = path.dropFirst("/v1/upstreams/".count)
        } else {
            return
        }
        guard let slash = rest.firstIndex(of: "/"), slash != rest.startIndex else { return }
        rest = rest[rest.index(after: slash)...]
        if rest.hasPrefix("api/") { passThroughTarget = text }
    }

    static func trimmed(_ value: [UInt8]) -> [UInt8] {
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 }
        guard let first = value.firstIndex(where: { !isSpace($0) }), let last = value.lastIndex(where: { !isSpace($0) }) else { return [] }
        return Array(value[first...last])
    }

    static func isIDByte(_ b: UInt8) -> Bool {
        (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) || b == UInt8(ascii: "-") || b == UInt8(ascii: ".")
    }

    /// RFC 9110 `tchar`.
    static func isTchar(_ b: UInt8) -> Bool {
        isIDByte(b) || Array("!#$%&'*+^_`|~".utf8).contains(b)
    }
}
