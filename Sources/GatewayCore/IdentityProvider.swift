public import HTTPTransport
import Foundation
import JWTKit
import Synchronization

/// An external identity provider whose JWTs the gateway accepts (`auth.idp` in the config).
public struct IdentityProviderSettings: Sendable, Equatable {
    /// The `iss` its tokens carry.
    public var issuer: String
    /// An `aud` its tokens must include.
    public var audience: String
    /// Where its signing keys are published (JWKS), fetched through the gateway's libcurl client.
    public var jwksURL: String
    /// The claim holding the caller's roles (an array of strings, or one space-separated string).
    public var rolesClaim: String
    /// The claim holding tenant-id scopes, if any.
    public var scopesClaim: String?
    /// Trust and timeouts for fetching the JWKS.
    public var options: TransferOptions
    /// The shortest time between two JWKS fetches (a token with an unknown `kid` triggers one).
    public var minimumRefreshInterval: Duration

    public init(
        issuer: String, audience: String, jwksURL: String, rolesClaim: String = "roles", scopesClaim: String? = nil,
        options: TransferOptions = .init(), minimumRefreshInterval: Duration = .seconds(30)
    ) {
        self.issuer = issuer
        self.audience = audience
        self.jwksURL = jwksURL
        self.rolesClaim = rolesClaim
        self.scopesClaim = scopesClaim
        self.options = options
        self.minimumRefreshInterval = minimumRefreshInterval
    }
}

/// Verifies IdP tokens against a cached JWKS; an unknown `kid` refreshes the JWKS (at most once per
/// `minimumRefreshInterval`), so key rotation at the IdP needs no restart.
public final class IdentityProvider: Sendable {
    public let settings: IdentityProviderSettings
    private let transport: any UpstreamTransport
    private struct State {
        var keys: JWTKeyCollection?
        var kids: Set<String> = []
        var lastFetch: ContinuousClock.Instant?
    }
    private let state = Mutex(State())

    public init(settings: IdentityProviderSettings, transport: any UpstreamTransport) {
        self.settings = settings
        self.transport = transport
    }

    /// The caller a valid IdP token stands for, or nil.
    public func verify(_ token: String) async -> Caller? {
        let kid = Self.kid(of: token)
        var (keys, known) = state.withLock { ($0.keys, $0.kids) }
        if keys == nil || (kid.map { !known.contains($0) } ?? false) {
            if let refreshed = await refresh() { (keys, known) = refreshed }
        }
        guard let keys, let claims = try? await keys.verify(token, as: IdentityClaims.self) else { return nil }
        guard claims.iss == settings.issuer, claims.aud.contains(settings.audience), let sub = claims.sub, !sub.isEmpty else { return nil }
        let roles = Set((claims.strings[settings.rolesClaim] ?? []).filter { Role.all.contains($0) })
        let scopes = Set(settings.scopesClaim.flatMap { claims.strings[$0] } ?? []).map { $0.lowercased() }
        return Caller(id: "idp:" + sub, roles: roles, scopes: Set(scopes), method: "idp-token")
    }

    private func refresh() async -> (JWTKeyCollection, Set<String>)? {
        let now = ContinuousClock.now
        let allowed = state.withLock { state -> Bool in
            if let last = state.lastFetch, now - last < settings.minimumRefreshInterval { return false }
            state.lastFetch = now
            return true
        }
        guard allowed else { return nil }
        guard let response = try? await transport.send(UpstreamRequest(url: settings.jwksURL, headers: [("Accept", "application/json")])),
            response.status == 200
        else { return nil }
        let json = String(decoding: response.body, as: UTF8.self)
        let keys = JWTKeyCollection()
        guard (try? await keys.add(jwksJSON: json)) != nil else { return nil }
        struct KeySet: Decodable {
            struct Key: Decodable { var kid: String? }
            var keys: [Key]
        }
        let kids = Set(((try? JSONDecoder().decode(KeySet.self, from: Data(response.body)))?.keys ?? []).compactMap(\.kid))
        state.withLock {
            $0.keys = keys
            $0.kids = kids
        }
        return (keys, kids)
    }

    /// The `kid` of a JWS header, read without verifying anything.
    static func kid(of token: String) -> String? {
        guard let header = token.split(separator: ".").first else { return nil }
        var base64 = header.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return object["kid"] as? String
    }
}

/// The registered claims an IdP token must have, plus every string or string-array claim.
struct IdentityClaims: JWTPayload {
    var iss: String?
    var sub: String?
    var aud: [String]
    var exp: ExpirationClaim
    var strings: [String: [String]]

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        exp = try container.decode(ExpirationClaim.self, forKey: AnyKey(stringValue: "exp"))
        iss = try? container.decode(String.self, forKey: AnyKey(stringValue: "iss"))
        sub = try? container.decode(String.self, forKey: AnyKey(stringValue: "sub"))
        if let one = try? container.decode(String.self, forKey: AnyKey(stringValue: "aud")) {
            aud = [one]
        } else {
            aud = (try? container.decode([String].self, forKey: AnyKey(stringValue: "aud"))) ?? []
        }
        var strings: [String: [String]] = [:]
        for key in container.allKeys {
            if let list = try? container.decode([String].self, forKey: key) {
                strings[key.stringValue] = list
            } else if let text = try? container.decode(String.self, forKey: key) {
                strings[key.stringValue] = text.split(separator: " ").map(String.init)
            }
        }
        self.strings = strings
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: AnyKey.self)
        try container.encode(exp, forKey: AnyKey(stringValue: "exp"))
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
    }
}
