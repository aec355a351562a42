public import HTTPTransport
import Foundation
public import VeeamWire

/// What a login or refresh returns.
public struct TokenGrant: Sendable {
    public var accessToken: Secret
    public var refreshToken: Secret?
    /// Lifetime from the moment it was obtained.
    public var lifetime: Duration

    public init(accessToken: Secret, refreshToken: Secret?, lifetime: Duration) {
        self.accessToken = accessToken
        self.refreshToken = refreshToken
        self.lifetime = lifetime
    }
}

/// A product's token endpoint.
public protocol TokenGrantClient: Sendable {
    /// The password grant.
    func login(username: String, password: Secret) async throws -> TokenGrant
    /// The refresh grant.
    func refresh(_ refreshToken: Secret) async throws -> TokenGrant
}

/// Login failures. Messages name the upstream and the account, never a password or token.
public struct TokenError: Error, Sendable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        /// The upstream refused the credentials (400 `invalid_grant` and the like).
        public static let rejected = Code(rawValue: "upstream.login_rejected")
        /// The token endpoint answered something we could not use.
        public static let badResponse = Code(rawValue: "upstream.login_failed")
        /// The secret reference could not be read.
        public static let secretUnavailable = Code(rawValue: "config.secret_unavailable")
    }

    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "\(code): \(message)" }
}

/// `POST {base}/v5/Token` or `POST {base}/api/v3/token`: both products speak the OAuth password
/// and refresh grants with form bodies; their success bodies differ only in extra fields.
public struct OAuthTokenEndpoint: TokenGrantClient {
    public let transport: any UpstreamTransport
    public let url: String
    /// For messages: the upstream's name.
    public let upstream: String
    /// The product's success body (the wire model in VeeamAPI).
    public let body: any OAuthTokenBody.Type

    public init(transport: any UpstreamTransport, url: String, upstream: String, body: any OAuthTokenBody.Type) {
        self.transport = transport
        self.url = url
        self.upstream = upstream
        self.body = body
    }

    /// VB365 REST v5's token endpoint under `baseURL`.
    public static func vb365(transport: any UpstreamTransport, baseURL: String, upstream: String) -> OAuthTokenEndpoint {
        OAuthTokenEndpoint(transport: transport, url: URLBuilder.url(base: baseURL, path: ["v5", "Token"]), upstream: upstream, body: VB365TokenResponse.self)
    }

    /// VSPC REST v3's token endpoint under `baseURL`.
    public static func vspc(transport: any UpstreamTransport, baseURL: String, upstream: String) -> OAuthTokenEndpoint {
        OAuthTokenEndpoint(transport: transport, url: URLBuilder.url(base: baseURL, path: ["api", "v3", "token"]), upstream: upstream, body: VSPCTokenResponse.self)
    }

    public func login(username: String, password: Secret) async throws -> TokenGrant {
        try await grant([("grant_type", "password"), ("username", username), ("password", password.value)], what: "login of \(username)")
    }

    public func refresh(_ refreshToken: Secret) async throws -> TokenGrant {
        try await grant([("grant_type", "refresh_token"), ("refresh_token", refreshToken.value)], what: "token refresh")
    }

    private func grant(_ form: [(String, String)], what: String) async throws -> TokenGrant {
        let response = try await transport.send(
            UpstreamRequest(method: .post, url: url, headers: [("Accept", "application/json")], body: .form(form))
        )
        let decoder = JSONDecoder()
        switch response.status {
        case 200:
            guard let body = try? decoder.decode(self.body, from: Data(response.body)), !body.accessToken.isEmpty else {
                throw TokenError(.badResponse, "\(upstream): \(what) answered 200 without a usable token body")
            }
            return TokenGrant(
                accessToken: Secret(body.accessToken),
                refreshToken: body.refreshToken.flatMap { $0.isEmpty ? nil : Secret($0) },
                lifetime: .seconds(max(1, body.expiresIn ?? 3600))
            )
        case 400, 401, 403:
            let oauth = try? decoder.decode(OAuthErrorBody.self, from: Data(response.body))
            let detail = oauth.map { "\($0.error): \($0.errorDescription ?? "")" } ?? "status \(response.status)"
            throw TokenError(.rejected, "\(upstream): \(what) was refused (\(detail))")
        default:
            throw TokenError(.badResponse, "\(upstream): \(what) answered status \(response.status)")
        }
    }
}
