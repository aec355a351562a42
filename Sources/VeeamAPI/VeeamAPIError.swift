import VeeamWire
public import HTTPTransport
import Foundation

/// An upstream answered, but not with what was asked for. `upstreamMessage` keeps the upstream's
/// own words for the log; the front end never passes it (or the body) to the caller verbatim.
public struct VeeamAPIError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// 401 even after a fresh login.
        public static let unauthorized = Code(rawValue: "upstream.unauthorized")
        /// 403: the gateway's account may not do this (or, VB365, it is not the organization's own).
        public static let forbidden = Code(rawValue: "upstream.forbidden")
        public static let notFound = Code(rawValue: "upstream.not_found")
        /// 400 and other 4xx: the upstream refused our request.
        public static let badRequest = Code(rawValue: "upstream.bad_request")
        /// 5xx, VSPC's 520.
        public static let serverError = Code(rawValue: "upstream.server_error")
        /// 429; `retryAfter` says for how long.
        public static let throttled = Code(rawValue: "upstream.throttled")
        /// 202: VSPC queued the work as an async action.
        public static let asyncPending = Code(rawValue: "upstream.async_pending")
        /// VB365: the server does not serve the API version asked for (a 404 from a route every
        /// version has), or speaks none this gateway knows.
        public static let versionUnsupported = Code(rawValue: "upstream.version_unsupported")
        /// A 200 whose body does not parse.
        public static let badResponse = Code(rawValue: "upstream.bad_response")
    }

    public var code: Code
    public var status: Int
    /// The upstream's message (VB365 `message`, VSPC `errors[0].message`), for logs only.
    public var upstreamMessage: String?
    /// Seconds, from a 429's `retryAfter`.
    public var retryAfter: Int?

    public init(code: Code, status: Int, upstreamMessage: String? = nil, retryAfter: Int? = nil) {
        self.code = code
        self.status = status
        self.upstreamMessage = upstreamMessage
        self.retryAfter = retryAfter
    }

    public var description: String {
        "\(code) (status \(status))" + (upstreamMessage.map { ": \($0.prefix(300))" } ?? "")
    }

    /// Maps a non-2xx answer (or a 202) to an error, reading either product's error body.
    public static func from(_ response: UpstreamResponse) -> VeeamAPIError {
        let decoder = JSONDecoder()
        var message: String?
        var retryAfter: Int?
        if let vspc = try? decoder.decode(VSPCErrorResponse.self, from: Data(response.body)), let first = vspc.errors.first {
            message = first.message
            retryAfter = first.retryAfter
        } else if let vb = try? decoder.decode(VB365ErrorBody.self, from: Data(response.body)) {
            // `errorCode` (v7+) is kept for the log; v8's `stackTrace` is the server's internals and is dropped.
            let parts = [vb.errorCode, vb.message].compactMap { $0 }
            message = parts.isEmpty ? nil : parts.joined(separator: ": ")
        }
        retryAfter = retryAfter.map(UpstreamResponse.quietPeriod(seconds:)) ?? response.retryAfterHeader
        let code: Code
        switch response.status {
        case 202: code = .asyncPending
        case 401: code = .unauthorized
        case 403: code = .forbidden
        case 404: code = .notFound
        case 429: code = .throttled
        case 400..<500: code = .badRequest
        default: code = .serverError
        }
        return VeeamAPIError(code: code, status: response.status, upstreamMessage: message, retryAfter: retryAfter)
    }
}

extension UpstreamResponse {
    /// Decodes a 200 body, or throws the mapped error.
    func decoded<T: Decodable>(_ type: T.Type) throws -> T {
        guard status == 200 else { throw VeeamAPIError.from(self) }
        do {
            return try JSONDecoder().decode(T.self, from: Data(body))
        } catch {
            throw VeeamAPIError(code: .badResponse, status: status, upstreamMessage: "undecodable body: \(error)")
        }
    }
}
