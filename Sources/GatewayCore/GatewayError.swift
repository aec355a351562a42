public import HTTPTransport
public import TokenBroker
public import VeeamAPI

/// Every error the gateway answers with. `code` is a closed set, an upstream failure carrying
/// its typed cause; its stable `rawValue` doubles as a metric label, and its ``Code/category``
/// decides the HTTP status and title, in one place (``Code/Category/status``,
/// ``Code/Category/title``). `detail` is written for the
/// caller and never contains a secret, a token, or an upstream's body.
public struct GatewayError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable error code: its `rawValue` (`auth.invalid`, `upstream.timeout`, …) is what callers
    /// see in a problem's `code` and operators in logs and metrics; its category is what it means
    /// for the HTTP answer. Compared as a whole, never as a string.
    public enum Code: Sendable, Hashable, CustomStringConvertible {
        /// What a code means for the answer: each category has one status and title.
        public enum Category: Sendable, Hashable {
            case badRequest, unauthorized, forbidden, notFound, methodNotAllowed, payloadTooLarge, tooManyRequests, cancelled, internalError
            /// What was asked for is no longer kept (a change feed's cursor older than its log).
            case gone
            /// The gateway itself has no room for the request now (its own bound, not an upstream's).
            case unavailable
            /// The upstream could not be reached, refused the gateway's login, or answered with an error.
            case upstreamFailed
            /// The upstream asks the gateway to slow down, or too many requests wait for it.
            case upstreamBusy
            case upstreamTimeout
            /// The HTTP layer refused the request itself with this status (a malformed request).
            case httpProtocol(status: Int)

            /// The HTTP status of this category.
            public var status: Int {
                switch self {
                case .badRequest: 400
                case .unauthorized: 401
                case .forbidden: 403
                case .notFound: 404
                case .methodNotAllowed: 405
                case .payloadTooLarge: 413
                case .tooManyRequests: 429
                case .cancelled: 499
                case .internalError: 500
                case .gone: 410
                case .unavailable: 503
                case .upstreamFailed: 502
                case .upstreamBusy: 503
                case .upstreamTimeout: 504
                case .httpProtocol(let status): status
                }
            }

            /// The problem's `title` for this category.
            public var title: String {
                switch self {
                case .badRequest: "Bad request"
                case .unauthorized: "Unauthorized"
                case .forbidden: "Forbidden"
                case .notFound: "Not found"
                case .methodNotAllowed: "Method not allowed"
                case .payloadTooLarge: "Payload too large"
                case .tooManyRequests: "Too many requests"
                case .cancelled: "Cancelled"
                case .internalError: "Internal error"
                case .gone: "Gone"
                case .unavailable: "Service unavailable"
                case .upstreamFailed: "Upstream error"
                case .upstreamBusy: "Upstream busy"
                case .upstreamTimeout: "Upstream timeout"
                case .httpProtocol: "Bad request"
                }
            }
        }

        case invalidRequest, invalidParameter, invalidID, unsupportedGrant
        case authRequired, authInvalid, forbidden
        case tenantNotFound, routeNotFound, methodNotAllowed, bodyTooLarge
        /// A pass-through path no route of the policy allows (403, naming the policy).
        case passThroughNotAllowed
        /// A pass-through path that is not a plain relative path (traversal, encoding, a URL).
        case passThroughInvalidPath
        /// The upstream has nothing at a pass-through path (its 404).
        case passThroughNotFound
        case tooManyFailures, rateLimited, cancelled
        case internalError, invariant
        /// The change feed is not configured (`events`).
        case feedNotConfigured
        /// A change feed cursor older than what is kept, or of another process start: resync.
        case feedCursorGone
        /// As many feed readers wait as `events.maxReaders` allows.
        case feedBusy
        /// An upstream failed, and nothing more specific is known.
        case upstreamFailed
        /// A request the HTTP layer refused before any route ran, with this status.
        case httpProtocol(status: Int)
        /// An upstream call failed, for the cause its layer gave.
        case upstream(UpstreamCause)

        /// Why an upstream call failed, typed as the layer that failed says it.
        public enum UpstreamCause: Sendable, Hashable {
            /// No usable HTTP answer (libcurl), or a call the upstream stack held back.
            case transport(UpstreamError.Code)
            /// The gateway's login to the upstream failed.
            case login(TokenError.Code)
            /// The upstream answered with an error.
            case answer(VeeamAPIError.Code)
        }

        /// Too many requests wait for the upstream (the gate's queue is full).
        public static let upstreamOverloaded = Code.upstream(.transport(.overloaded))

        /// The stable code callers and operators see: `auth.invalid`, `upstream.timeout`, …
        public var rawValue: String {
            switch self {
            case .invalidRequest, .httpProtocol: "request.invalid"
            case .invalidParameter: "request.invalid_parameter"
            case .invalidID: "request.invalid_id"
            case .unsupportedGrant: "auth.unsupported_grant_type"
            case .authRequired: "auth.required"
            case .authInvalid: "auth.invalid"
            case .forbidden: "auth.forbidden"
            case .tenantNotFound: "tenant.not_found"
            case .routeNotFound: "route.not_found"
            case .passThroughNotAllowed: "passthrough.not_allowed"
            case .passThroughInvalidPath: "passthrough.invalid_path"
            case .passThroughNotFound: "passthrough.not_found"
            case .methodNotAllowed: "request.method_not_allowed"
            case .bodyTooLarge: "request.too_large"
            case .tooManyFailures: "auth.too_many_failures"
            case .rateLimited: "rate.limited"
            case .cancelled: "request.cancelled"
            case .internalError: "internal"
            case .invariant: "internal.invariant"
            case .upstreamFailed: "upstream.error"
            case .feedNotConfigured: "events.not_configured"
            case .feedCursorGone: "events.cursor_gone"
            case .feedBusy: "events.busy"
            case .upstream(.transport(let code)): code.rawValue
            case .upstream(.login(let code)): code.rawValue
            case .upstream(.answer(let code)): code.rawValue
            }
        }

        /// What the code means for the answer, decided here for every code.
        public var category: Category {
            switch self {
            case .invalidRequest, .invalidParameter, .invalidID, .unsupportedGrant, .passThroughInvalidPath: .badRequest
            case .authRequired, .authInvalid: .unauthorized
            case .forbidden, .passThroughNotAllowed: .forbidden
            case .tenantNotFound, .routeNotFound, .passThroughNotFound: .notFound
            case .methodNotAllowed: .methodNotAllowed
            case .bodyTooLarge: .payloadTooLarge
            case .tooManyFailures, .rateLimited: .tooManyRequests
            case .cancelled: .cancelled
            case .internalError, .invariant: .internalError
            case .feedNotConfigured: .notFound
            case .feedCursorGone: .gone
            case .feedBusy: .unavailable
            case .upstreamFailed: .upstreamFailed
            case .httpProtocol(let status): .httpProtocol(status: status)
            case .upstream(.transport(let code)):
                code == .timeout || code == .connectTimeout ? .upstreamTimeout : code == .throttled || code == .overloaded ? .upstreamBusy : .upstreamFailed
            case .upstream(.login): .upstreamFailed
            case .upstream(.answer(let code)): code == .throttled || code == .asyncPending ? .upstreamBusy : .upstreamFailed
            }
        }

        public var description: String { rawValue }
    }

    public var code: Code
    public var detail: String
    /// The upstream it concerns, if any.
    public var upstream: String?
    /// Seconds, for `Retry-After`.
    public var retryAfter: Int?
    /// The methods the resource answers, for `Allow` (with ``Code/methodNotAllowed``).
    public var allow: String?
    /// For the log only (upstream messages, libcurl detail).
    public var logDetail: String?

    public init(_ code: Code, detail: String, upstream: String? = nil, retryAfter: Int? = nil, allow: String? = nil, logDetail: String? = nil) {
        self.code = code
        self.detail = detail
        self.upstream = upstream
        self.retryAfter = retryAfter
        self.allow = allow
        self.logDetail = logDetail
    }

    /// The HTTP status (from the code's category).
    public var status: Int { code.category.status }
    /// The problem's title (from the code's category).
    public var title: String { code.category.title }

    public var description: String { "\(code) (\(status)): \(detail)" + (logDetail.map { " — \($0)" } ?? "") }

    /// The RFC 9457 `type` of this error's problem object.
    public var problemType: String { "urn:veeam-gateway:problem:" + code.rawValue }

    public static func badRequest(_ code: Code = .invalidRequest, _ detail: String) -> GatewayError {
        GatewayError(code, detail: detail)
    }

    /// 403, naming the roles that would be allowed (seed 004 for cloud tenants).
    public static func forbidden(roles: [String], what: String) -> GatewayError {
        GatewayError(.forbidden, detail: "Reading \(what) requires one of the roles: \(roles.joined(separator: ", ")).")
    }

    public static func notFound(_ detail: String) -> GatewayError {
        GatewayError(.tenantNotFound, detail: detail)
    }

    /// 500: an invariant of the gateway's own broke while answering. The request is answered and
    /// the process goes on; the log says what broke (`what` names the place, never data).
    public static func internalInvariant(_ what: String) -> GatewayError {
        GatewayError(.invariant, detail: "The gateway hit an internal error; the request id identifies it in the gateway's log.", logDetail: what)
    }

    /// Maps whatever an upstream call threw to the caller's answer, naming the upstream.
    public static func upstream(_ name: String, _ error: any Error) -> GatewayError {
        switch error {
        case let error as GatewayError:
            return error
        case let error as UpstreamError where error.code == .throttled:
            return GatewayError(
                .upstream(.transport(error.code)), detail: "Upstream \(name) is throttling requests.", upstream: name,
                retryAfter: error.retryAfter ?? 5, logDetail: error.message)
        case let error as UpstreamError where error.code == .overloaded:
            return GatewayError(
                .upstreamOverloaded, detail: "Too many requests are waiting for upstream \(name); try again shortly.", upstream: name,
                retryAfter: error.retryAfter ?? 1)
        case let error as UpstreamError:
            if error.code == .timeout || error.code == .connectTimeout {
                return GatewayError(
                    .upstream(.transport(error.code)), detail: "Upstream \(name) did not answer in time.", upstream: name, logDetail: error.message)
            }
            return GatewayError(
                .upstream(.transport(error.code)), detail: "Upstream \(name) could not be reached (\(error.code)).", upstream: name,
                logDetail: error.message)
        case let error as TokenError:
            return GatewayError(
                .upstream(.login(error.code)), detail: "The gateway could not log in to upstream \(name).", upstream: name,
                logDetail: error.message)
        case let error as VeeamAPIError:
            switch error.code {
            case .notFound:
                return GatewayError(.tenantNotFound, detail: "No such tenant.", upstream: name, logDetail: error.upstreamMessage)
            case .throttled:
                return GatewayError(
                    .upstream(.answer(error.code)), detail: "Upstream \(name) is throttling requests.", upstream: name,
                    retryAfter: error.retryAfter ?? 5, logDetail: error.upstreamMessage)
            case .asyncPending:
                return GatewayError(
                    .upstream(.answer(error.code)), detail: "Upstream \(name) queued the request; try again shortly.", upstream: name,
                    retryAfter: 2, logDetail: error.upstreamMessage)
            default:
                return GatewayError(
                    .upstream(.answer(error.code)), detail: "Upstream \(name) answered with an error (\(error.code), status \(error.status)).",
                    upstream: name, logDetail: error.upstreamMessage)
            }
        case is CancellationError:
            return GatewayError(.cancelled, detail: "The request was cancelled.", upstream: name)
        default:
            return GatewayError(.upstreamFailed, detail: "Upstream \(name) failed.", upstream: name, logDetail: "\(error)")
        }
    }
}
