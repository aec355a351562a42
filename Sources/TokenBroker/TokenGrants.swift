public import GatewaySecrets
public import HTTPTransport
import Foundation
import GatewayClock
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

    /// The lifetimes a grant is taken with: an upstream's `expires_in` outside them is clamped
    /// (a token said to live for 2^63 s is refreshed within a day, one said to live -5 s is used
    /// for a second and then refreshed, never a crash or a session that never renews).
    public static let acceptedLifetimes: ClosedRange<Duration> = .seconds(1) ... .seconds(24 * 3600)

    /// The lifetime for a grant whose `expires_in` was `seconds` (nil when absent or not a
    /// number: an hour, both products' default), within ``acceptedLifetimes``.
    public static func lifetime(expiresIn seconds: Double?) -> Duration {
        Duration.clamped(seconds: seconds ?? 3600, to: acceptedLifetimes)
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
        /// The token endpoint is not served: the server does not speak the API version asked for.
        public static let versionUnsupported = Code(rawValue: "upstream.version_unsupported")
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

/// A product's token endpoint: both products speak the OAuth password and refresh grants with
/// form bodies; where the endpoint is, what a login adds and what the success body looks like
/// are a ``Route``, worked out for each grant (a VB365 server's API version may be discovered
/// only when the first login is needed).
public struct OAuthTokenEndpoint: TokenGrantClient {
    /// Where and how a grant is posted.
    public struct Route: Sendable {
        public var url: String
        /// Form fields the password grant adds (VB365 v7+: `disable_antiforgery_token=true`).
        public var loginFields: [(String, String)]
        /// Request headers besides `Accept` (VSPC: `X-Client-Version`).
        public var headers: [(name: String, value: String)]
        /// The product's success body (a wire model in VeeamWire).
        public var body: any OAuthTokenBody.Type

        public init(
            url: String, loginFields: [(String, String)] = [], headers: [(name: String, value: String)] = [], body: any OAuthTokenBody.Type
        ) {
            self.url = url
            self.loginFields = loginFields
            self.headers = headers
            self.body = body
        }
    }

    public let transport: any UpstreamTransport
    /// For messages: the upstream's name.
    public let upstream: String
    private let route: @Sendable () async throws -> Route

    public init(transport: any UpstreamTransport, upstream: String, route: @escaping @Sendable () async throws -> Route) {
        self.transport = transport
        self.upstream = upstream
        self.route = route
    }

    /// VB365's token endpoint under `baseURL`, in the version `version` gives when a grant is
    /// made (``VB365APIVersion`` decides the path and the antiforgery flag).
    public static func vb365(
        transport: any UpstreamTransport, baseURL: String, upstream: String, version: @escaping @Sendable () async throws -> VB365APIVersion
    ) -> OAuthTokenEndpoint {
        OAuthTokenEndpoint(transport: transport, upstream: upstream) {
            let version = try await version()
            return Route(
                url: URLBuilder.url(base: baseURL, path: version.tokenPath),
                loginFields: version.hasAntiforgeryFlag ? [("disable_antiforgery_token", "true")] : [],
                body: VB365TokenResponse.self)
        }
    }

    /// VB365's token endpoint in a fixed version.
    public static func vb365(transport: any UpstreamTransport, baseURL: String, upstream: String, version: VB365APIVersion) -> OAuthTokenEndpoint {
        vb365(transport: transport, baseURL: baseURL, upstream: upstream, version: { version })
    }

    /// VSPC REST v3's token endpoint under `baseURL`, sending `X-Client-Version` when given.
    public static func vspc(transport: any UpstreamTransport, baseURL: String, upstream: String, clientVersion: String? = nil) -> OAuthTokenEndpoint {
        let route = Route(
            url: URLBuilder.url(base: baseURL, path: ["api", "v3", "token"]),
            headers: clientVersion.map { [(name: "X-Client-Version", value: $0)] } ?? [],
            body: VSPCTokenResponse.self)
        return OAuthTokenEndpoint(transport: transport, upstream: upstream) { route }
    }

    public func login(username: String, password: Secret) async throws -> TokenGrant {
        let route = try await route()
        return try await grant(route, [("grant_type", "password"), ("username", username), ("password", password.value)] + route.loginFields, what: "login of \(username)")
    }

    public func refresh(_ refreshToken: Secret) async throws -> TokenGrant {
        try await grant(try await route(), [("grant_type", "refresh_token"), ("refresh_token", refreshToken.value)], what: "token refresh")
    }

    private func grant(_ route: Route, _ form: [(String, String)], what: String) async throws -> TokenGrant {
        let response = try await transport.send(
            UpstreamRequest(method: .post, url: route.url, headers: [(name: "Accept", value: "application/json")] + route.headers, body: .form(form))
        )
        let decoder = JSONDecoder()
        switch response.status {
        case 200:
            guard let body = try? decoder.decode(route.body, from: Data(response.body)), !body.accessToken.isEmpty else {
                throw TokenError(.badResponse, "\(upstream): \(what) answered 200 without a usable token body")
            }
            return TokenGrant(
                accessToken: Secret(body.accessToken),
                refreshToken: body.refreshToken.flatMap { $0.isEmpty ? nil : Secret($0) },
                lifetime: TokenGrant.lifetime(expiresIn: body.expiresIn?.value)
            )
        case 400, 401, 403:
            throw TokenError(.rejected, "\(upstream): \(what) was refused (\(Self.reason(response)))")
        case 404:
            throw TokenError(.versionUnsupported, "\(upstream): \(route.url) is not served (status 404): the server does not speak this API version")
        default:
            throw TokenError(.badResponse, "\(upstream): \(what) answered status \(response.status)")
        }
    }

    /// The refusal in the server's words: OAuth's `{error, error_description}` (VB365 v5, VSPC)
    /// or `RESTExceptionInfo`'s `{message, errorCode}` (VB365 v6+); the status when neither parses.
    private static func reason(_ response: UpstreamResponse) -> String {
        let data = Data(response.body)
        if let oauth = try? JSONDecoder().decode(OAuthErrorBody.self, from: data) {
            return "\(oauth.error): \(oauth.errorDescription ?? "")"
        }
        if let info = try? JSONDecoder().decode(VB365ErrorBody.self, from: data), let message = info.message {
            return (info.errorCode.map { $0 + ": " } ?? "") + message
        }
        return "status \(response.status)"
    }
}
