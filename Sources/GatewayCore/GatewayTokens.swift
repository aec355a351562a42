public import Foundation
public import JWTKit
public import TokenBroker

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
    private static let kid = JWKIdentifier(string: "veeam-gateway")

    /// - Parameter signingKey: at least 32 bytes of secret.
    public init(signingKey: Secret, issuer: String = "veeam-gateway", lifetime: Duration = .seconds(900)) async {
        self.issuer = issuer
        self.lifetime = lifetime
        self.keys = JWTKeyCollection()
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
        return Caller(id: claims.sub.value, roles: Set(claims.roles), scopes: Set(claims.scopes), method: "gateway-token")
    }
}

extension AccessControl {
    /// Authenticates an `Authorization: Bearer` value that looks like a JWT.
    public func authenticate(token: String, address: String) async -> Outcome {
        if let wait = failedAuth.blocked(address) { return .tooManyFailures(retryAfter: wait) }
        var verified = await tokens?.verify(token)
        if verified == nil, let identityProvider { verified = await identityProvider.verify(token) }
        guard let caller = verified else {
            failedAuth.recordFailure(address)
            return .invalid
        }
        let rate = directory.records.first { $0.id == caller.id }?.rate ?? defaultRate
        if let wait = rateLimiter.take(caller.id, rate: rate) { return .rateLimited(retryAfter: wait) }
        return .caller(caller)
    }

    /// `client_credentials`: the caller whose id and key these are, or nil (same for every failure).
    public func clientCredentials(id: String, secret: String, address: String) -> CallerRecord? {
        guard let record = directory.authenticate(apiKey: secret), record.id == id else {
            failedAuth.recordFailure(address)
            return nil
        }
        return record
    }

    /// True for a value with the three dot-separated parts of a JWS compact serialization.
    public static func looksLikeJWT(_ value: String) -> Bool {
        value.utf8.count > 20 && value.split(separator: ".", omittingEmptySubsequences: false).count == 3
    }
}
