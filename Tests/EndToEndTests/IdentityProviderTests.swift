import HTTPTransport
import Foundation
import GatewayTestSupport
import Hummingbird
import JWTKit
import _CryptoExtras
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// A test IdP: ES256 keys, a JWKS served over HTTP on loopback by the test itself.
final class TestIdentityProvider: Sendable {
    struct Key: Sendable {
        let kid: String
        let privateKey: ES256PrivateKey
    }
    let published = Mutex<[Key]>([])
    /// Further JWKS entries, as raw JSON objects (an RSA key without `alg`, say).
    let raw = Mutex<[String]>([])
    let fetches = Mutex(0)

    func newKey(kid: String) -> Key { Key(kid: kid, privateKey: ES256PrivateKey()) }

    func publish(_ keys: [Key]) { published.withLock { $0 = keys } }

    var jwks: String {
        let entries = published.withLock { $0 }.compactMap { key -> String? in
            guard let p = key.privateKey.publicKey.parameters else { return nil }
            return #"{"kty":"EC","crv":"P-256","use":"sig","alg":"ES256","kid":"\#(key.kid)","x":"\#(p.x)","y":"\#(p.y)"}"#
        }
        return #"{"keys":[\#((entries + raw.withLock { $0 }).joined(separator: ","))]}"#
    }

    struct Claims: JWTPayload {
        var iss: IssuerClaim
        var aud: AudienceClaim
        var sub: SubjectClaim
        var exp: ExpirationClaim
        var roles: [String]
        var veeam_scopes: [String]?
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    func token(_ key: Key, sub: String = "alice", roles: [String], scopes: [String]? = nil, issuer: String = "https://idp.test",
        audience: String = "veeam-gateway", expires: Date = Date().addingTimeInterval(300)) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(ecdsa: key.privateKey, kid: JWKIdentifier(string: key.kid))
        return try await keys.sign(
            Claims(iss: .init(value: issuer), aud: .init(value: [audience]), sub: .init(value: sub), exp: .init(value: expires), roles: roles, veeam_scopes: scopes),
            kid: JWKIdentifier(string: key.kid))
    }

    /// Serves `/jwks.json` on a free loopback port while `body` runs.
    func serve<T: Sendable>(_ body: (String) async throws -> T) async throws -> T {
        let router = Router()
        router.get("/jwks.json") { _, _ -> Response in
            self.fetches.withLock { $0 += 1 }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: self.jwks)))
        }
        let port = PortBox()
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), onServerRunning: { port.set($0.localAddress?.port ?? 0) })
        let group = ServiceGroup(configuration: .init(services: [app], logger: Logger(label: "jwks")))
        let task = Task { try await group.run() }
        let bound = await port.wait()
        let result: Result<T, any Error>
        do { result = .success(try await body("http://127.0.0.1:\(bound)/jwks.json")) } catch { result = .failure(error) }
        await group.triggerGracefulShutdown()
        _ = await task.result
        return try result.get()
    }
}

@Suite("End to end: external identity provider (JWKS)", .serialized)
struct IdentityProviderTests {
    @Test("IdP tokens are verified against the JWKS; roles come from the claim; a new kid refreshes the JWKS once")
    func idpTokens() async throws {
        let idp = TestIdentityProvider()
        let first = idp.newKey(kid: "k1")
        idp.publish([first])
        try await idp.serve { jwksURL in
            try await withSimulator { sim in
                try await withGateway(vb365: sim, vspc: sim, jwksURL: jwksURL) { gw in
                    let admin = try await idp.token(first, roles: ["ServiceProviderAdministrator", "SomethingElse"])
                    let list = try await gw.get("/v1/tenants", key: nil, headers: [("Authorization", "Bearer " + admin)])
                    #expect(list.status == 200)
                    #expect(((try JSONSerialization.jsonObject(with: Data(list.body)) as? [String: Any])?["data"] as? [Any])?.count == 6)
                    #expect(idp.fetches.withLock { $0 } == 1)

                    let owner = try await idp.token(first, roles: ["CompanyOwner"])
                    #expect(try await gw.get(cloudTenantPath, key: nil, headers: [("Authorization", "Bearer " + owner)]).status == 403)
                    let app = try await idp.token(first, sub: "abc-app", roles: [], scopes: ["vb365-eu.cbc52c37-df7f-4b03-98f3-036e7d4b3127"])
                    #expect(try await gw.get(organizationPath, key: nil, headers: [("Authorization", "Bearer " + app)]).status == 200)
                    #expect(try await gw.get(otherOrganizationPath, key: nil, headers: [("Authorization", "Bearer " + app)]).status == 404)
                    #expect(idp.fetches.withLock { $0 } == 1, "known kid: the cached JWKS is used")

                    // Rotation: a token with a kid the cache does not know makes one refetch.
                    let second = idp.newKey(kid: "k2")
                    idp.publish([first, second])
                    let rotated = try await idp.token(second, roles: ["PortalAdministrator"])
                    #expect(try await gw.get("/v1/upstreams", key: nil, headers: [("Authorization", "Bearer " + rotated)]).status == 200)
                    #expect(idp.fetches.withLock { $0 } == 2)
                }
            }
        }
    }

    @Test("wrong issuer, wrong audience, expired, unknown key: all 401")
    func refused() async throws {
        let idp = TestIdentityProvider()
        let key = idp.newKey(kid: "k1")
        idp.publish([key])
        let stranger = idp.newKey(kid: "k1")  // same kid, another key: a forged token
        try await idp.serve { jwksURL in
            try await withSimulator { sim in
                try await withGateway(vb365: sim, vspc: sim, jwksURL: jwksURL, idpRefresh: "30s") { gw in
                    let tokens = [
                        try await idp.token(key, roles: ["PortalAdministrator"], issuer: "https://evil.test"),
                        try await idp.token(key, roles: ["PortalAdministrator"], audience: "another-app"),
                        try await idp.token(key, roles: ["PortalAdministrator"], expires: Date().addingTimeInterval(-60)),
                        try await idp.token(stranger, roles: ["PortalAdministrator"]),
                    ]
                    for token in tokens {
                        #expect(try await gw.get("/v1/tenants", key: nil, headers: [("Authorization", "Bearer " + token)]).status == 401)
                    }
                    #expect(sim.state.counters(.vspc).requests.isEmpty)
                    // Tokens with ever new kids cannot make the gateway hammer the IdP.
                    for i in 0..<5 {
                        let unknown = try await idp.token(idp.newKey(kid: "random-\(i)"), roles: ["PortalAdministrator"])
                        let status = try await gw.get("/v1/tenants", key: nil, headers: [("Authorization", "Bearer " + unknown)]).status
                        #expect([401, 429].contains(status), "refused; after 5 failures the address is slowed with 429")
                    }
                    #expect(idp.fetches.withLock { $0 } == 1, "one fetch within the 30 s minimum interval")
                }
            }
        }
    }

    @Test("pinned algorithms: a PS512 token cannot bind an RSA key published without alg; the genuine RS256 token still passes; none, HS256 and a future nbf are refused")
    func pinnedAlgorithms() async throws {
        let idp = TestIdentityProvider()
        let rsa = try Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048))
        let (modulus, exponent) = try rsa.publicKey.getKeyPrimitives()
        func b64url(_ data: Data) -> String {
            data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        }
        idp.raw.withLock { $0 = [#"{"kty":"RSA","use":"sig","kid":"rsa-1","n":"\#(b64url(modulus))","e":"\#(b64url(exponent))"}"#] }
        let signer = JWTKeyCollection()
        await signer.add(rsa: rsa, digestAlgorithm: .sha256, kid: JWKIdentifier(string: "rsa-1"))
        func claims(nbf: Date? = nil) -> String {
            let exp = Int(Date().addingTimeInterval(300).timeIntervalSince1970)
            let notBefore = nbf.map { #","nbf":\#(Int($0.timeIntervalSince1970))"# } ?? ""
            return #"{"iss":"https://idp.test","aud":["veeam-gateway"],"sub":"alice","exp":\#(exp),"roles":["PortalAdministrator"]\#(notBefore)}"#
        }
        struct Claims: JWTPayload {
            var iss: IssuerClaim
            var aud: AudienceClaim
            var sub: SubjectClaim
            var exp: ExpirationClaim
            var nbf: NotBeforeClaim?
            var roles: [String]
            func verify(using algorithm: some JWTAlgorithm) async throws {}
        }
        func genuine(nbf: Date? = nil) async throws -> String {
            try await signer.sign(
                Claims(iss: .init(value: "https://idp.test"), aud: .init(value: ["veeam-gateway"]), sub: .init(value: "alice"),
                    exp: .init(value: Date().addingTimeInterval(300)), nbf: nbf.map { .init(value: $0) }, roles: ["PortalAdministrator"]),
                kid: JWKIdentifier(string: "rsa-1"))
        }
        func unsigned(alg: String) -> String {
            b64url(Data(#"{"alg":"\#(alg)","kid":"rsa-1","typ":"JWT"}"#.utf8)) + "." + b64url(Data(claims().utf8)) + "." + b64url(Data(repeating: 7, count: 256))
        }
        try await idp.serve { jwksURL in
            try await withSimulator { sim in
                try await withGateway(vb365: sim, vspc: sim, jwksURL: jwksURL) { gw in
                    func status(_ token: String) async throws -> Int {
                        try await gw.get("/v1/upstreams", key: nil, headers: [("Authorization", "Bearer " + token)]).status
                    }
                    // First an unauthenticated token naming PS512 with the real kid: before pinning it
                    // bound the alg-less key to PS512, and every genuine RS256 token failed after it.
                    let forged = try await status(unsigned(alg: "PS512"))
                    #expect(forged == 401)
                    let real = try await status(try await genuine())
                    #expect(real == 200, "the genuine RS256 token after the forged one")
                    // (The harness slows an address after 5 failures: 5 refusals in all here.)
                    for alg in ["none", "HS256", "RS512"] {
                        let refused = try await status(unsigned(alg: alg))
                        #expect(refused == 401, "\(alg)")
                    }
                    let again = try await status(try await genuine())
                    #expect(again == 200)
                    let early = try await status(try await genuine(nbf: Date().addingTimeInterval(600)))
                    #expect(early == 401, "not before a time still to come")
                }
            }
        }
    }
}
