import HTTPTransport
import TokenBroker
import VeeamAPI

/// Every error the gateway answers with. `code` is stable and carries no data (it doubles as a
/// metric label); only `GatewayHTTP` turns it into problem+json. `detail` is written for the
/// caller and never contains a secret, a token, or an upstream's body.
public struct GatewayError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: String
    public var status: Int
    public var title: String
    public var detail: String
    /// The upstream it concerns, if any.
    public var upstream: String?
    /// Seconds, for `Retry-After`.
    public var retryAfter: Int?
    /// For the log only (upstream messages, libcurl detail).
    public var logDetail: String?

    public init(code: String, status: Int, title: String, detail: String, upstream: String? = nil, retryAfter: Int? = nil, logDetail: String? = nil) {
        self.code = code
        self.status = status
        self.title = title
        self.detail = detail
        self.upstream = upstream
        self.retryAfter = retryAfter
        self.logDetail = logDetail
    }

    public var description: String { "\(code) (\(status)): \(detail)" + (logDetail.map { " — \($0)" } ?? "") }

    /// The RFC 9457 `type` of this error's problem object.
    public var problemType: String { "urn:veeam-gateway:problem:" + code }

    public static func badRequest(_ code: String = "request.invalid", _ detail: String) -> GatewayError {
        GatewayError(code: code, status: 400, title: "Bad request", detail: detail)
    }

    /// 403, naming the roles that would be allowed (seed 004 for cloud tenants).
    public static func forbidden(roles: [String], what: String) -> GatewayError {
        GatewayError(
            code: "auth.forbidden", status: 403, title: "Forbidden",
            detail: "Reading \(what) requires one of the roles: \(roles.joined(separator: ", ")).")
    }

    public static func notFound(_ detail: String) -> GatewayError {
        GatewayError(code: "tenant.not_found", status: 404, title: "Not found", detail: detail)
    }

    /// 500: an invariant of the gateway's own broke while answering. The request is answered and
    /// the process goes on; the log says what broke (`what` names the place, never data).
    public static func internalInvariant(_ what: String) -> GatewayError {
        GatewayError(
            code: "internal.invariant", status: 500, title: "Internal error",
            detail: "The gateway hit an internal error; the request id identifies it in the gateway's log.", logDetail: what)
    }

    /// Maps whatever an upstream call threw to the caller's answer, naming the upstream.
    public static func upstream(_ name: String, _ error: any Error) -> GatewayError {
        switch error {
        case let error as GatewayError:
            return error
        case let error as UpstreamError:
            if error.code == .timeout || error.code == .connectTimeout {
                return GatewayError(
                    code: error.code.rawValue, status: 504, title: "Upstream timeout",
                    detail: "Upstream \(name) did not answer in time.", upstream: name, logDetail: error.message)
            }
            return GatewayError(
                code: error.code.rawValue, status: 502, title: "Upstream unreachable",
                detail: "Upstream \(name) could not be reached (\(error.code)).", upstream: name, logDetail: error.message)
        case let error as TokenError:
            return GatewayError(
                code: error.code.rawValue, status: 502, title: "Upstream login failed",
                detail: "The gateway could not log in to upstream \(name).", upstream: name, logDetail: error.message)
        case let error as VeeamAPIError:
            switch error.code {
            case .notFound:
                return GatewayError(code: "tenant.not_found", status: 404, title: "Not found", detail: "No such tenant.", upstream: name, logDetail: error.upstreamMessage)
            case .throttled:
                return GatewayError(
                    code: error.code.rawValue, status: 503, title: "Upstream busy",
                    detail: "Upstream \(name) is throttling requests.", upstream: name, retryAfter: error.retryAfter ?? 5, logDetail: error.upstreamMessage)
            case .asyncPending:
                return GatewayError(
                    code: error.code.rawValue, status: 503, title: "Upstream busy",
                    detail: "Upstream \(name) queued the request; try again shortly.", upstream: name, retryAfter: 2, logDetail: error.upstreamMessage)
            default:
                return GatewayError(
                    code: error.code.rawValue, status: 502, title: "Upstream error",
                    detail: "Upstream \(name) answered with an error (\(error.code), status \(error.status)).", upstream: name, logDetail: error.upstreamMessage)
            }
        case is CancellationError:
            return GatewayError(code: "request.cancelled", status: 499, title: "Cancelled", detail: "The request was cancelled.", upstream: name)
        default:
            return GatewayError(code: "upstream.error", status: 502, title: "Upstream error", detail: "Upstream \(name) failed.", upstream: name, logDetail: "\(error)")
        }
    }
}
