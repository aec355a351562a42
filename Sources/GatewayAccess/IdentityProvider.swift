public import GatewayClock
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
    /// `auth.idp.algorithms`: the only `alg`s accepted. A token naming another is refused before
    /// any key is touched, and a JWKS key without `alg` is bound to the first of these its type
    /// allows (never to whatever the first token names).
    public var algorithms: [String]

    /// Accepted when `auth.idp.algorithms` is not set.
    public static let defaultAlgorithms = ["RS256", "ES256"]
    /// What `auth.idp.algorithms` may name: public-key algorithms only (no `none`, no HMAC).
    public static let supportedAlgorithms = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]

    public init(
        issuer: String, audience: String, jwksURL: String, rolesClaim: String = "roles", scopesClaim: String? = nil,
        options: TransferOptions = .init(), minimumRefreshInterval: Duration = .seconds(30), algorithms: [String] = defaultAlgorithms
    ) {
        self.algorithms = algorithms
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

    private let clock: GatewayClock

    public init(settings: IdentityProviderSettings, transport: any UpstreamTransport, clock: GatewayClock = .continuous) {
        self.clock = clock
        self.settings = settings
        self.transport = transport
    }

    /// The caller a valid IdP token stands for, or nil.
    public func verify(_ token: String) async -> Caller? {
        let header = Self.header(of: token)
        // An algorithm not pinned is refused before any key is looked up or bound.
        guard let alg = header?["alg"] as? String, settings.algorithms.contains(alg) else { return nil }
        let kid = header?["kid"] as? String
        var (keys, known) = state.withLock { ($0.keys, $0.kids) }
        if keys == nil || (kid.map { !known.contains($0) } ?? false) {
            if let refreshed = await refresh() { (keys, known) = refreshed }
        }
        guard let keys, let claims = try? await keys.verify(token, as: IdentityClaims.self) else { return nil }
        guard claims.iss == settings.issuer, claims.aud.contains(settings.audience), let sub = claims.sub, !sub.isEmpty else { return nil }
        let roles = Set((claims.strings[settings.rolesClaim] ?? []).filter { Role.all.contains($0) })
        let scopes = Set(settings.scopesClaim.flatMap { claims.strings[$0] } ?? []).map { $0.lowercased() }
        return Caller(id: "idp:" + sub, roles: roles, scopes: Set(scopes), method: .idpToken)
    }

    private func refresh() async -> (JWTKeyCollection, Set<String>)? {
        let now = clock.now
        let allowed = state.withLock { state -> Bool in
            if let last = state.lastFetch, now - last < settings.minimumRefreshInterval { return false }
            state.lastFetch = now
            return true
        }
        guard allowed else { return nil }
        guard let response = try? await transport.send(UpstreamRequest(url: settings.jwksURL, headers: [("Accept", "application/json")])),
            response.status == 200
        else { return nil }
        guard let (json, kids) = Self.pinned(jwks: response.body, algorithms: settings.algorithms) else { return nil }
        let keys = JWTKeyCollection()
        guard (try? await keys.add(jwksJSON: json)) != nil else { return nil }
        state.withLock {
            $0.keys = keys
            $0.kids = kids
        }
        return (keys, kids)
    }

    /// A JWS header's fields, read without verifying anything.
    static func header(of token: String) -> [String: Any]? {
        guard let header = token.split(separator: ".", omittingEmptySubsequences: false).first, header.utf8.count <= 4096 else { return nil }
        var base64 = header.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64) else { return nil }
        return try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    }

    /// The JWKS with every key bound to one pinned algorithm: a key whose `alg` is not pinned is
    /// dropped, a key without `alg` gets the first pinned algorithm its type allows (RSA: RS*/PS*;
    /// EC: the one its curve implies; OKP: EdDSA) or is dropped. Also the `kid`s kept.
    static func pinned(jwks body: [UInt8], algorithms: [String]) -> (json: String, kids: Set<String>)? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any], let all = object["keys"] as? [[String: Any]] else {
            return nil
        }
        let curves = ["P-256": "ES256", "P-384": "ES384", "P-521": "ES512"]
        var kept: [[String: Any]] = []
        for var key in all {
            let candidates: [String]
            switch key["kty"] as? String {
            case "RSA": candidates = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]
            case "EC": candidates = (key["crv"] as? String).flatMap { curves[$0] }.map { [$0] } ?? []
            case "OKP": candidates = ["EdDSA"]
            default: candidates = []
            }
            if let alg = key["alg"] as? String {
                guard candidates.contains(alg), algorithms.contains(alg) else { continue }
            } else {
                guard let bound = algorithms.first(where: candidates.contains) else { continue }
                key["alg"] = bound
            }
            kept.append(key)
        }
        guard let data = try? JSONSerialization.data(withJSONObject: ["keys": kept]) else { return nil }
        return (String(decoding: data, as: UTF8.self), Set(kept.compactMap { $0["kid"] as? String }))
    }
}

/// The registered claims an IdP token must have, plus every string or string-array claim.
struct IdentityClaims: JWTPayload {
    var iss: String?
    var sub: String?
    var aud: [String]
    var exp: ExpirationClaim
    var nbf: NotBeforeClaim?
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
        nbf = try container.decodeIfPresent(NotBeforeClaim.self, forKey: AnyKey(stringValue: "nbf"))
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
        try nbf?.verifyNotBefore()
    }
}
