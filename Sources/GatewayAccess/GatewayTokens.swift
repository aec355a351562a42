public import GatewaySecrets
public import Foundation
import Crypto
public import JWTKit

/// Claims of a token the gateway issues (`POST /v1/auth/token`): who, which roles and scopes,
/// until when. HMAC-SHA256 signed with a key from a secret reference.
public struct GatewayClaims: JWTPayload, Equatable {
    public var iss: IssuerClaim
    public var sub: SubjectClaim
    public var iat: IssuedAtClaim
    public var exp: ExpirationClaim
    public var roles: [String]
    public var scopes: [String]

    public func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
    }
}

/// Issues and verifies the gateway's own short-lived tokens.
public final class GatewayTokenIssuer: Sendable {
    public let issuer: String
    public let lifetime: Duration
    private let keys: JWTKeyCollection
    /// The same key for ``verifySynchronously(_:now:)`` (HMAC-SHA256 from swift-crypto: jwt-kit's
    /// key collection is an actor, and the event-loop hot path must not wait).
    private let hmacKey: SymmetricKey
    private static let kid = JWKIdentifier(string: "veeam-gateway")
    private static let kidString = "veeam-gateway"

    /// - Parameter signingKey: at least 32 bytes of secret.
    public init(signingKey: Secret, issuer: String = "veeam-gateway", lifetime: Duration = .seconds(900)) async {
        self.issuer = issuer
        self.lifetime = lifetime
        self.keys = JWTKeyCollection()
        self.hmacKey = SymmetricKey(data: Array(signingKey.value.utf8))
        await keys.add(hmac: HMACKey(from: signingKey.value), digestAlgorithm: .sha256, kid: Self.kid)
    }

    /// A signed token for `record`, and its lifetime in seconds.
    public func issue(for record: CallerRecord, now: Date = Date()) async throws -> (token: String, expiresIn: Int) {
        let seconds = max(1, Int(lifetime.components.seconds))
        let claims = GatewayClaims(
            iss: .init(value: issuer), sub: .init(value: record.id), iat: .init(value: now),
            exp: .init(value: now.addingTimeInterval(TimeInterval(seconds))), roles: record.roles.sorted(), scopes: record.scopes.sorted())
        return (try await keys.sign(claims, kid: Self.kid), seconds)
    }

    /// The caller a valid token stands for; nil when the token is expired, tampered with, signed
    /// with another key, or from another issuer.
    public func verify(_ token: String) async -> Caller? {
        guard let claims = try? await keys.verify(token, as: GatewayClaims.self), claims.iss.value == issuer else { return nil }
        return Caller(id: claims.sub.value, roles: Set(claims.roles), scopes: Set(claims.scopes), method: .gatewayToken)
    }
}

extension GatewayTokenIssuer {
    /// Verifies one of our own tokens without waiting: header `{"alg":"HS256","kid":"veeam-gateway"}`,
    /// an HMAC-SHA256 signature (compared in constant time) over the first two parts, then issuer
    /// and expiry. Stricter than ``verify(_:)``, never looser: anything it does not accept is for
    /// the async path to judge, so it answers "valid" only where jwt-kit would.
    public func verifySynchronously(_ token: String, now: Date = Date()) -> Caller? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let header = Self.base64URLDecode(parts[0]), let payload = Self.base64URLDecode(parts[1]),
            let signature = Self.base64URLDecode(parts[2])
        else { return nil }
        guard let fields = try? JSONDecoder().decode(Header.self, from: Data(header)), fields.alg == "HS256", fields.kid == Self.kidString else {
            return nil
        }
        let signed = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        guard HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: signed, using: hmacKey) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        guard let claims = try? decoder.decode(GatewayClaims.self, from: Data(payload)), claims.iss.value == issuer, claims.exp.value > now else {
            return nil
        }
        return Caller(id: claims.sub.value, roles: Set(claims.roles), scopes: Set(claims.scopes), method: .gatewayToken)
    }

    struct Header: Decodable {
        var alg: String
        var kid: String?
    }

    static func base64URLDecode(_ text: Substring) -> [UInt8]? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 != UInt8(ascii: "=") }) else { return text.isEmpty ? [] : nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.utf8.count % 4) % 4)
        return Data(base64Encoded: base64).map(Array.init)
    }
}

extension AccessControl {
    /// ``authenticate(token:address:)`` without waiting, for the hot path; nil when it cannot decide
    /// alone (an identity provider is configured and the token is not one of ours), in which case
    /// nothing was recorded and the async path decides.
    public func authenticateSynchronously(token: String, address: String) -> Outcome? {
        if let wait = failedAuth.blocked(address) { return .tooManyFailures(retryAfter: wait) }
        let verified = tokens?.verifySynchronously(token)
        if verified == nil, identityProvider != nil { return nil }
        if verified == nil, tokens != nil, !Self.isOurs(token) { return nil }
        return admit(verified, address: address)
    }

    /// The end of every token check, on both paths: no caller counts as a failure of the address;
    /// a caller is held to its rate. A gateway token stands for a configured caller as the
    /// configuration is *now*: a caller removed since (and the configuration reloaded) is refused
    /// at once, and roles and scopes narrowed since are narrowed in the token too (the token never
    /// grants more than it was issued with, nor more than the caller has now).
    func admit(_ verified: Caller?, address: String) -> Outcome {
        guard let caller = verified.flatMap({ current($0) }) else {
            failedAuth.recordFailure(address)
            return .invalid
        }
        return admitted(caller)
    }

    /// A token's caller checked against the caller list; other callers (an IdP's) as they are.
    func current(_ caller: Caller) -> Caller? {
        guard caller.method == .gatewayToken else { return caller }
        guard let record = directory.record(id: caller.id) else { return nil }
        return Caller(id: caller.id, roles: caller.roles.intersection(record.roles), scopes: caller.scopes.intersection(record.scopes), method: caller.method)
    }

    /// True when a token's header names our key and HS256: one the synchronous check can judge
    /// as well as jwt-kit. (Other tokens, even invalid ones, go to the async path.)
    static func isOurs(_ token: String) -> Bool {
        guard let first = token.split(separator: ".", maxSplits: 1).first, let header = GatewayTokenIssuer.base64URLDecode(first),
            let fields = try? JSONDecoder().decode(GatewayTokenIssuer.Header.self, from: Data(header))
        else { return false }
        return fields.alg == "HS256" && fields.kid == "veeam-gateway"
    }

    /// The rate a caller is held to (its own, else the default).
    public func rate(of callerID: String) -> RateLimit {
        directory.record(id: callerID).map { rate(of: $0) } ?? defaultRate
    }

    /// A configured caller's rate: its own, else the default.
    func rate(of record: CallerRecord) -> RateLimit {
        record.rate ?? defaultRate
    }
}

extension AccessControl {
    /// Authenticates an `Authorization: Bearer` value that looks like a JWT.
    public func authenticate(token: String, address: String) async -> Outcome {
        if let wait = failedAuth.blocked(address) { return .tooManyFailures(retryAfter: wait) }
        var verified = await tokens?.verify(token)
        if verified == nil, let identityProvider { verified = await identityProvider.verify(token) }
        return admit(verified, address: address)
    }

    /// Authenticates `client_credentials` (`POST /v1/auth/token`): the caller whose id and key
    /// these are, held to its rate as any admitted caller; a blocked address, a wrong id and a
    /// wrong key are refused as an API key is (the last two alike, and counted as failures).
    public func authenticate(clientID: String, secret: String, address: String) -> Outcome {
        if let wait = failedAuth.blocked(address) { return .tooManyFailures(retryAfter: wait) }
        guard let record = directory.authenticate(apiKey: secret), record.id == clientID else {
            failedAuth.recordFailure(address)
            return .invalid
        }
        return admitted(Caller(id: record.id, roles: record.roles, scopes: record.scopes, method: .clientCredentials))
    }

    /// True for a value with the three dot-separated parts of a JWS compact serialization.
    public static func looksLikeJWT(_ value: String) -> Bool {
        value.utf8.count > 20 && value.utf8.reduce(0) { $1 == UInt8(ascii: ".") ? $0 + 1 : $0 } == 2
    }
}
