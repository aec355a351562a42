import GatewaySecrets
import GatewayAccess
import HTTPTransport
import Foundation
import GatewayCore
import GatewayTestSupport
import Testing

extension RunningGateway {
    func token(form: [(String, String)], headers: [(name: String, value: String)] = []) async throws -> UpstreamResponse {
        try await client.perform(
            UpstreamRequest(method: .post, url: baseURL + "/v1/auth/token", headers: headers, body: .form(form)), options: TransferOptions())
    }

    func accessToken(id: String, key: String) async throws -> String {
        let response = try await token(form: [("grant_type", "client_credentials"), ("client_id", id), ("client_secret", key)])
        #expect(response.status == 200, "\(response.text)")
        let body = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
        #expect(body["token_type"] as? String == "Bearer")
        #expect(body["expires_in"] as? Int == 300)
        return try #require(body["access_token"] as? String)
    }
}

@Suite("End to end: gateway-issued tokens", .serialized)
struct TokenTests {
    @Test("client_credentials gives a JWT that carries the caller's roles and scopes")
    func issueAndUse() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let admin = try await gw.accessToken(id: "sp-admin", key: TestKeys.spAdmin)
                #expect(admin.split(separator: ".").count == 3)
                let list = try await gw.get("/v1/tenants", key: nil, headers: [("Authorization", "Bearer " + admin)])
                #expect(list.status == 200)
                #expect(((try JSONSerialization.jsonObject(with: Data(list.body)) as? [String: Any])?["data"] as? [Any])?.count == 6)

                let app = try await gw.accessToken(id: "abc-app", key: TestKeys.abcApp)
                let own = try await gw.get(organizationPath, key: nil, headers: [("Authorization", "Bearer " + app)])
                #expect(own.status == 200)
                let other = try await gw.get(cloudTenantPath, key: nil, headers: [("Authorization", "Bearer " + app)])
                #expect(other.status == 404)

                let basic = Data("company-owner:\(TestKeys.companyOwner)".utf8).base64EncodedString()
                let viaBasic = try await gw.token(form: [("grant_type", "client_credentials")], headers: [("Authorization", "Basic " + basic)])
                #expect(viaBasic.status == 200)
                #expect(viaBasic.header("cache-control") == "no-store")
            }
        }
    }

    @Test("wrong secrets, wrong ids and wrong grants are refused alike")
    func refused() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let wrongSecret = try await gw.token(form: [("grant_type", "client_credentials"), ("client_id", "sp-admin"), ("client_secret", "nope-nope-nope-nope")])
                let wrongID = try await gw.token(form: [("grant_type", "client_credentials"), ("client_id", "portal-admin"), ("client_secret", TestKeys.spAdmin)])
                #expect(wrongSecret.status == 401)
                #expect(wrongID.status == 401)
                #expect(wrongSecret.header("content-type") == "application/problem+json")
                // No client credentials: refused before its grant is looked at (pipelineExchange has the 400).
                let grant = try await gw.token(form: [("grant_type", "password"), ("username", "sp-admin"), ("password", TestKeys.spAdmin)])
                #expect(grant.status == 401)
                let get = try await gw.get("/v1/auth/token", key: nil)
                #expect(get.status == 405)
                #expect(get.header("allow") == "POST")
            }
        }
    }

    @Test("the token exchange is a pipeline route: credentials before the target, the caller's rate, one access line naming the caller")
    func pipelineExchange() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                // Nothing presented: 401 auth.required, saying what the route takes.
                let none = try await gw.token(form: [("grant_type", "client_credentials")])
                #expect(none.status == 401)
                #expect(none.text.contains("auth.required") && none.text.contains("client_secret"), "\(none.text)")
                // A caller learns nothing of the target without valid credentials: a wrong grant
                // with no valid client is 401, with one 400.
                let wrongGrant = try await gw.token(form: [("grant_type", "password"), ("client_id", "sp-admin"), ("client_secret", "nope-nope-nope-nope")])
                #expect(wrongGrant.status == 401)
                let grant = try await gw.token(form: [("grant_type", "password"), ("client_id", "sp-admin"), ("client_secret", TestKeys.spAdmin)])
                #expect(grant.status == 400)
                #expect(grant.text.contains("auth.unsupported_grant_type"), "\(grant.text)")
                // Only a client id and its key are exchanged: not an API key, not a token.
                let token = try await gw.accessToken(id: "sp-admin", key: TestKeys.spAdmin)
                #expect(try await gw.token(form: [("grant_type", "client_credentials")], headers: [("Authorization", "Bearer " + token)]).status == 401)
                #expect(try await gw.token(form: [("grant_type", "client_credentials")], headers: [("X-API-Key", TestKeys.spAdmin)]).status == 401)
                // The caller's rate holds here as on every route: burst 3, then 429 with Retry-After.
                var statuses: [Int] = []
                for _ in 0..<4 {
                    statuses.append(try await gw.token(form: [("grant_type", "client_credentials"), ("client_id", "limited"), ("client_secret", TestKeys.limited)]).status)
                }
                #expect(statuses == [200, 200, 200, 429], "\(statuses)")
                // One access line per exchange, naming the caller it admitted (a refusal by rate, as
                // on every route, names none); no secret in any line.
                #expect(await eventually(within: .seconds(5)) {
                    gw.logs.all.filter { $0.contains("route=/v1/auth/token") && $0.contains("caller=limited") && $0.contains("status=200") }.count == 3
                        && gw.logs.all.contains { $0.contains("route=/v1/auth/token") && $0.contains("status=429") }
                }, "\(gw.logs.all.filter { $0.contains("auth/token") }.suffix(4))")
                #expect(gw.logs.all.contains { $0.contains("route=/v1/auth/token") && $0.contains("caller=sp-admin") && $0.contains("status=400") })
                #expect(gw.logs.lines(containing: [TestKeys.spAdmin, TestKeys.limited, token]).isEmpty)
                #expect(sim.state.counters(.vb365).requests.isEmpty && sim.state.counters(.vspc).requests.isEmpty, "an exchange reads nothing upstream")
            }
        }
    }

    @Test("expired, tampered and wrongly signed tokens are 401, and cost no upstream call")
    func badTokens() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let good = try await gw.accessToken(id: "portal-admin", key: TestKeys.portalAdmin)
                var parts = good.split(separator: ".").map(String.init)
                // Tamper with the payload: claim another subject, keep the signature.
                let forged = Data(#"{"iss":"veeam-gateway","sub":"portal-admin","iat":1,"exp":4102444800,"roles":["PortalAdministrator"],"scopes":[]}"#.utf8)
                    .base64EncodedString().replacingOccurrences(of: "=", with: "").replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                parts[1] = forged
                let tampered = parts.joined(separator: ".")

                let record = CallerRecord(id: "portal-admin", keyHash: APIKey.hash(TestKeys.portalAdmin), roles: ["PortalAdministrator"])
                let sameKey = await GatewayTokenIssuer(signingKey: Secret(TestKeys.signingKey), lifetime: .seconds(60))
                let expired = try await sameKey.issue(for: record, now: Date().addingTimeInterval(-3600)).token
                let otherKey = await GatewayTokenIssuer(signingKey: Secret(String(repeating: "x", count: 48)), lifetime: .seconds(60))
                let wronglySigned = try await otherKey.issue(for: record).token
                let otherIssuer = await GatewayTokenIssuer(signingKey: Secret(TestKeys.signingKey), issuer: "someone-else", lifetime: .seconds(60))
                let foreign = try await otherIssuer.issue(for: record).token

                for token in [tampered, expired, wronglySigned, foreign] {
                    let response = try await gw.get("/v1/tenants", key: nil, headers: [("Authorization", "Bearer " + token)])
                    #expect(response.status == 401)
                }
                #expect(sim.state.counters(.vb365).requests.isEmpty)
                #expect(sim.state.counters(.vspc).requests.isEmpty)
                // The same key's fresh token is accepted: the checks above failed for their reasons.
                let fresh = try await sameKey.issue(for: record).token
                #expect(try await gw.get("/v1/upstreams", key: nil, headers: [("Authorization", "Bearer " + fresh)]).status == 200)
                #expect(!gw.logs.all.contains { $0.contains(good) })
            }
        }
    }
}
