import GatewayCore
import HTTPTypes
import Hummingbird
import NIOCore
import ResponseCache
import Synchronization

/// Where an answer's status, header fields and body go: HTTP/1.1 bytes on the hot path
/// (``HTTP1AnswerWriter``), a Hummingbird `Response` on the router (``ResponseAnswerWriter``).
/// The writer adds only what its transport owns (`Date`, `Content-Length`); everything else
/// comes from ``AnswerRendering``.
protocol AnswerWriter {
    mutating func start(_ status: HTTPResponse.Status)
    mutating func field(_ header: AnswerHeader, _ value: String)
    /// A field whose value is `prefix` followed by the decimal `number` (`max-age=300`, an
    /// `Age`): a writer may write it without making the string.
    mutating func field(_ header: AnswerHeader, prefix: StaticString, number: Int)
    /// `X-Request-Id`: a writer may write an id made here without making its string.
    mutating func field(_ header: AnswerHeader, requestID: RequestID)
    /// The body, or nil for none (a 304). `shared`: bytes many answers send alike, named (a
    /// cached answer's ETag), which a writer may keep in its transport's form.
    mutating func end(body: [UInt8]?, shared: String?)
}

extension AnswerWriter {
    mutating func field(_ header: AnswerHeader, prefix: StaticString, number: Int) {
        field(header, prefix.description + String(number))
    }

    mutating func field(_ header: AnswerHeader, requestID: RequestID) {
        field(header, requestID.text)
    }
}

/// The one place an answer's status and headers are decided, for both front ends: a cached
/// answer (304 or 200, `Content-Type`, `ETag`, `Cache-Control: private, max-age`, `Age`,
/// `X-Cache`), a JSON document, or a problem (RFC 9457, with `Retry-After`, `Allow` and
/// `WWW-Authenticate` where they apply); `X-Request-Id` on each.
enum AnswerRendering {
    /// Writes `content` answering request `requestID` (`instance`: its path, quoted by a
    /// problem, and made only for one); returns the status written.
    @discardableResult
    static func write<Writer: AnswerWriter>(
        _ content: PipelineAnswer.Content, requestID: RequestID, ifNoneMatch: String?, instance: @autoclosure () -> String, into writer: inout Writer
    ) -> Int {
        switch content {
        case .cached(let answer, let cacheStatus):
            let notModified = notModified(ifNoneMatch: ifNoneMatch, etag: answer.etag)
            writer.start(notModified ? .notModified : .ok)
            writer.field(.contentType, "application/json")
            writer.field(.eTag, answer.etag)
            writer.field(.cacheControl, prefix: "private, max-age=", number: max(0, answer.maxAge))
            writer.field(.age, prefix: "", number: answer.age)
            if let cacheStatus { writer.field(.xCache, cacheStatus.rawValue) }
            writer.field(.requestID, requestID: requestID)
            writer.end(body: notModified ? nil : answer.body, shared: answer.etag)
            return notModified ? 304 : 200
        case .json(let body, let kind):
            writer.start(.ok)
            writer.field(.contentType, "application/json")
            switch kind {
            case .plain:
                break
            case .noStore:
                writer.field(.cacheControl, "no-store")
            case .statusPage, .sessionOpened:
                if case .sessionOpened(let cookies) = kind {
                    for cookie in cookies { writer.field(.setCookie, cookie) }
                }
                writer.field(.cacheControl, "no-store")
                for field in StatusPage.securityHeaders { writer.field(field.header, field.value) }
            }
            writer.field(.requestID, requestID: requestID)
            writer.end(body: body, shared: nil)
            return 200
        case .written(let status, let body):
            writer.start(HTTPResponse.Status.standard(status))
            if body != nil { writer.field(.contentType, "application/json") }
            writer.field(.cacheControl, "no-store")
            writer.field(.requestID, requestID: requestID)
            writer.end(body: body ?? [], shared: nil)
            return status
        case .eventStream:
            // Only the router streams; an answer that reaches a writer this way is a bug.
            return writeProblem(.internalInvariant("an event stream reached an answer writer"), requestID: requestID, instance: instance(), into: &writer)
        case .problem(let error):
            return writeProblem(error, requestID: requestID, instance: instance(), into: &writer)
        }
    }

    /// A problem+json answer (RFC 9457), with `Retry-After`, `Allow` and `WWW-Authenticate`
    /// where they apply. Apart from ``write(_:requestID:ifNoneMatch:instance:into:)``, which
    /// stays free of recursion (it is on every hit).
    static func writeProblem<Writer: AnswerWriter>(_ error: GatewayError, requestID: RequestID, instance: String, into writer: inout Writer) -> Int {
        let status = HTTPResponse.Status.standard(error.status)
        writer.start(status)
        writer.field(.contentType, "application/problem+json")
        if let retryAfter = error.retryAfter { writer.field(.retryAfter, prefix: "", number: retryAfter) }
        if let allow = error.allow { writer.field(.allow, allow) }
        if error.status == 401 { writer.field(.wwwAuthenticate, #"Bearer realm="veeam-gateway""#) }
        writer.field(.requestID, requestID: requestID)
        writer.end(body: Problem(error, requestID: requestID.text, instance: instance).body, shared: nil)
        return error.status
    }

    /// 304 when the caller's `If-None-Match` names the ETag (or is `*`).
    static func notModified(ifNoneMatch: String?, etag: String) -> Bool {
        guard let ifNoneMatch else { return false }
        return ifNoneMatch.split(separator: ",").contains { candidate in
            let trimmed = candidate.trimmingCharacters(in: .whitespaces)
            return trimmed == etag || trimmed == "*"
        }
    }
}

/// The header fields an answer carries, each with its name and its HTTP/1.1 line start.
enum AnswerHeader {
    case contentType, eTag, cacheControl, age, xCache, requestID, retryAfter, allow, wwwAuthenticate
    case contentSecurityPolicy, xContentTypeOptions, referrerPolicy, xFrameOptions, setCookie

    /// The field's name (the names of our own fields are valid tokens: never nil).
    var name: HTTPField.Name? {
        switch self {
        case .contentType: .contentType
        case .eTag: .eTag
        case .cacheControl: .cacheControl
        case .age: .age
        case .xCache: Self.xCacheName
        case .requestID: Self.requestIDName
        case .retryAfter: .retryAfter
        case .allow: .allow
        case .wwwAuthenticate: .wwwAuthenticate
        case .contentSecurityPolicy: .contentSecurityPolicy
        case .xContentTypeOptions: .xContentTypeOptions
        case .referrerPolicy: Self.referrerPolicyName
        case .xFrameOptions: Self.xFrameOptionsName
        case .setCookie: .setCookie
        }
    }

    /// The name as HTTP/1.1 writes it, with the colon and space.
    var lineStart: StaticString {
        switch self {
        case .contentType: "Content-Type: "
        case .eTag: "ETag: "
        case .cacheControl: "Cache-Control: "
        case .age: "Age: "
        case .xCache: "X-Cache: "
        case .requestID: "X-Request-Id: "
        case .retryAfter: "Retry-After: "
        case .allow: "Allow: "
        case .wwwAuthenticate: "WWW-Authenticate: "
        case .contentSecurityPolicy: "Content-Security-Policy: "
        case .xContentTypeOptions: "X-Content-Type-Options: "
        case .referrerPolicy: "Referrer-Policy: "
        case .xFrameOptions: "X-Frame-Options: "
        case .setCookie: "Set-Cookie: "
        }
    }

    private static let xCacheName = HTTPField.Name("X-Cache")
    private static let requestIDName = HTTPField.Name("X-Request-Id")
    private static let referrerPolicyName = HTTPField.Name("Referrer-Policy")
    private static let xFrameOptionsName = HTTPField.Name("X-Frame-Options")
}

/// An answer as HTTP/1.1 bytes, as Hummingbird's codec would write it (`Date` and
/// `Content-Length` after the fields). A large shared body goes out as its own kept buffer.
struct HTTP1AnswerWriter: AnswerWriter {
    var buffer: ByteBuffer
    /// The connection closes after this answer (`Connection: close`).
    var closing = false
    /// A body of ``BodyBuffers/threshold`` bytes or more, to write after `buffer`.
    var largeBody: ByteBuffer?
    let date: String
    let bodies: BodyBuffers

    init(buffer: ByteBuffer, date: String, bodies: BodyBuffers) {
        self.buffer = buffer
        self.date = date
        self.bodies = bodies
    }

    mutating func start(_ status: HTTPResponse.Status) {
        switch status.code {
        case 200: buffer.writeStaticString("HTTP/1.1 200 OK\r\n")
        case 304: buffer.writeStaticString("HTTP/1.1 304 Not Modified\r\n")
        default: buffer.writeString("HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\n")
        }
    }

    mutating func field(_ header: AnswerHeader, _ value: String) {
        line(header.lineStart, value)
    }

    /// A header line: its start (`ETag: `), `value` and CRLF, written with one capacity check.
    private mutating func line(_ start: StaticString, _ value: String) {
        var value = value
        _ = value.withUTF8 { value in
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: start.utf8CodeUnitCount + value.count + 2) { out in
                var at = Self.copy(start, into: out, at: 0)
                UnsafeMutableRawBufferPointer(rebasing: out[at..<(at + value.count)]).copyMemory(from: UnsafeRawBufferPointer(value))
                at += value.count
                return Self.copy("\r\n", into: out, at: at)
            }
        }
    }

    mutating func field(_ header: AnswerHeader, requestID: RequestID) {
        guard let uuid = requestID.uuid else { return line(header.lineStart, requestID.text) }
        let start = header.lineStart
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: start.utf8CodeUnitCount + RequestIDs.textLength + 2) { out in
            let at = Self.copy(start, into: out, at: 0)
            RequestIDs.writeUUID(high: uuid.high, low: uuid.low, into: UnsafeMutableRawBufferPointer(rebasing: out[at..<(at + RequestIDs.textLength)]))
            return Self.copy("\r\n", into: out, at: at + RequestIDs.textLength)
        }
    }

    mutating func field(_ header: AnswerHeader, prefix: StaticString, number: Int) {
        let start = header.lineStart
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: start.utf8CodeUnitCount + prefix.utf8CodeUnitCount + Self.decimalMaximum + 2) { out in
            var at = Self.copy(start, into: out, at: 0)
            at = Self.copy(prefix, into: out, at: at)
            at = Self.decimal(number, into: out, at: at)
            return Self.copy("\r\n", into: out, at: at)
        }
    }

    /// The most bytes an `Int` takes in decimal ASCII (a sign and 19 digits).
    private static let decimalMaximum = 20

    /// Copies `text` into `out` at `at`; returns where it ends. `out` has room (the caller reserved it).
    private static func copy(_ text: StaticString, into out: UnsafeMutableRawBufferPointer, at: Int) -> Int {
        let count = text.utf8CodeUnitCount
        UnsafeMutableRawBufferPointer(rebasing: out[at..<(at + count)]).copyMemory(from: UnsafeRawBufferPointer(start: text.utf8Start, count: count))
        return at + count
    }

    /// Writes `value` in decimal ASCII into `out` at `at` (room for ``decimalMaximum`` bytes);
    /// returns where it ends.
    private static func decimal(_ value: Int, into out: UnsafeMutableRawBufferPointer, at start: Int) -> Int {
        var at = start
        if value < 0 {
            out[at] = UInt8(ascii: "-")
            at += 1
        }
        var rest = value.magnitude
        var digits = 1
        var probe = rest
        while probe >= 10 {
            probe /= 10
            digits += 1
        }
        var index = at + digits
        repeat {
            index -= 1
            out[index] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
        } while rest > 0
        return at + digits
    }

    mutating func end(body: [UInt8]?, shared: String?) {
        line("Date: ", date)
        if closing { buffer.writeStaticString("Connection: close\r\n") }
        guard let body else {
            buffer.writeStaticString("\r\n")
            return
        }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 16 + Self.decimalMaximum + 4) { out in
            var at = Self.copy("Content-Length: ", into: out, at: 0)
            at = Self.decimal(body.count, into: out, at: at)
            return Self.copy("\r\n\r\n", into: out, at: at)
        }
        if let shared, body.count >= BodyBuffers.threshold {
            largeBody = bodies.buffer(for: shared, body: body)
        } else {
            buffer.writeBytes(body)
        }
    }
}

/// An answer as a Hummingbird `Response` (its codec adds `Date` and `Content-Length`), or as the
/// head and body HTTP/2 stream handlers write.
struct ResponseAnswerWriter: AnswerWriter {
    var status: HTTPResponse.Status = .ok
    var fields = HTTPFields()
    var body: [UInt8]?

    mutating func start(_ status: HTTPResponse.Status) {
        self.status = status
    }

    mutating func field(_ header: AnswerHeader, _ value: String) {
        if let name = header.name { fields.append(HTTPField(name: name, value: value)) }
    }

    mutating func end(body: [UInt8]?, shared: String?) {
        self.body = body
    }

    var response: Response {
        Response(status: status, headers: fields, body: body.map { .init(byteBuffer: ByteBuffer(bytes: $0)) } ?? .init())
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
