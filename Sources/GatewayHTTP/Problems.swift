public import GatewayAccess
import Foundation
import Synchronization
public import GatewayCore
public import Hummingbird
public import NIOCore

/// The request context of the gateway: Hummingbird's basic context plus the request id.
public struct GatewayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The caller's `X-Request-Id` when well-formed, else one the gateway made.
    public var requestID: String = ""
    /// Who is calling, once authenticated.
    public var caller: Caller?
    /// Written by the authentication middleware so the access log (outside it) can name the caller.
    public var callerNote = CallerNote()
    /// The configuration snapshot this request runs under (taken once, at its start).
    public var snapshot: GatewaySnapshot?
    /// The peer's IP address (for failed-authentication limits).
    public let remoteAddress: String
    /// The connection (or HTTP/2 stream) the request came on: its verified client certificate,
    /// if any, is looked up only when a request presents no other credential.
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
        self.remoteAddress = (source.channel.remoteAddress ?? source.channel.parent?.remoteAddress)?.ipAddress ?? "unknown"
    }
}

/// Responses with JSON bodies, encoded by ``GatewayJSON`` (sorted keys: stable bytes, stable ETags).
enum JSON {
    static func response<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok, contentType: String = "application/json") throws -> Response {
        Response(status: status, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(bytes: try GatewayJSON.encode(value))))
    }
}

/// RFC 9457 problem details, plus our stable `code` and the request id.
struct Problem: Encodable {
    /// The problem sent if a problem itself could not be encoded.
    static let unencodable =
        #"{"code":"internal.invariant","detail":"The gateway hit an internal error.","status":500,"title":"Internal error","type":"urn:veeam-gateway:problem:internal.invariant"}"#
    var type: String
    var title: String
    var status: Int
    var detail: String
    var code: String
    var requestId: String
    var instance: String
    var upstream: String?

    init(_ error: GatewayError, requestID: String, instance: String) {
        self.type = error.problemType
        self.title = error.title
        self.status = error.status
        self.detail = error.detail
        self.code = error.code.rawValue
        self.requestId = requestID
        self.instance = instance
        self.upstream = error.upstream
    }

    /// The problem document, as sent.
    var body: [UInt8] {
        // Cannot fail with these members; should it, the caller still gets a problem, a 500.
        (try? GatewayJSON.encode(self)) ?? Array(Self.unencodable.utf8)
    }
}

extension HTTPResponse.Status {
    /// The statuses the gateway answers with, by code, each with its reason phrase.
    private static let known: [Int: HTTPResponse.Status] = {
        let all: [HTTPResponse.Status] = [
            .ok, .created, .accepted, .noContent, .notModified, .badRequest, .unauthorized, .forbidden, .notFound, .methodNotAllowed,
            .notAcceptable, .requestTimeout, .conflict, .gone, .lengthRequired, .preconditionFailed, .contentTooLarge, .uriTooLong, .unsupportedMediaType, .unprocessableContent,
            .tooManyRequests, .requestHeaderFieldsTooLarge, .internalServerError, .notImplemented, .badGateway, .serviceUnavailable, .gatewayTimeout, .httpVersionNotSupported,
        ]
        return Dictionary(all.map { ($0.code, $0) }, uniquingKeysWith: { first, _ in first })
    }()

    /// `code` with its standard reason phrase (`403 Forbidden`): every status line the gateway
    /// writes, on the router and the hot path alike, carries one. A code without a known phrase
    /// gets its class's (`Client Error`, `Server Error`).
    static func standard(_ code: Int) -> HTTPResponse.Status {
        if let known = known[code] { return known }
        return HTTPResponse.Status(code: code, reasonPhrase: code >= 500 ? "Server Error" : code >= 400 ? "Client Error" : "Status")
    }
}

extension GatewayError {
    static func methodNotAllowed(_ allow: String) -> GatewayError {
        GatewayError(.methodNotAllowed, detail: "This resource answers \(allow) only.", allow: allow)
    }

    static let tokensDisabled = GatewayError(.routeNotFound, detail: "Gateway tokens are not enabled (auth.tokens.signingKey).")
    static let unsupportedGrant = GatewayError(.unsupportedGrant, detail: "grant_type must be client_credentials.")
    static let bodyTooLarge = GatewayError(.bodyTooLarge, detail: "The request body is larger than 16 KiB.")

    static let authRequired = GatewayError(
        .authRequired, detail: "Send an API key as Authorization: Bearer <key> or X-API-Key, or a gateway token as Authorization: Bearer <token>.")
    static let authInvalid = GatewayError(.authInvalid, detail: "The credentials are not valid.")
    static func tooManyFailures(_ seconds: Int) -> GatewayError {
        GatewayError(.tooManyFailures, detail: "Too many failed authentications; try again later.", retryAfter: seconds)
    }
    static func rateLimited(_ seconds: Int) -> GatewayError {
        GatewayError(.rateLimited, detail: "The caller's request rate is exceeded; try again later.", retryAfter: seconds)
    }
    static func adminRequired(_ roles: Set<String>) -> GatewayError {
        GatewayError(.forbidden, detail: "This operation requires one of the roles: \(roles.sorted().joined(separator: ", ")).")
    }

    static let routeNotFound = GatewayError(.routeNotFound, detail: "No such resource.")
    static let internalError = GatewayError(.internalError, detail: "The gateway failed to serve this request.")
}

/// The caller id of a request, for its access-log line (a reference, shared by the context copies).
public final class CallerNote: Sendable {
    private let value = Mutex<String?>(nil)
    public init() {}
    public var id: String? {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}
