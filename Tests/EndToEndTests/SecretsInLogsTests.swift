import HTTPTransport
import Foundation
import GatewayTestSupport
import Testing
import VeeamSimulator

@Suite("End to end: no secret in any log line", .serialized)
struct SecretsInLogsTests {
    @Test("a session of logins, failures, refreshes and reads logs no password, token or API key, and names callers and routes")
    func session() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim, cache: "{ maxBytes: 0 }") { gw in
                // Reads by every kind of caller, with API keys and a gateway token.
                _ = try await gw.get("/v1/tenants")
                _ = try await gw.get(cloudTenantPath, key: TestKeys.spAdmin)
                _ = try await gw.get(organizationPath, key: TestKeys.abcApp)
                let token = try await gw.accessToken(id: "sp-admin", key: TestKeys.spAdmin)
                _ = try await gw.get("/v1/tenants", key: nil, headers: [("Authorization", "Bearer " + token)])
                // Failures: bad keys, a bad token grant, a revoked upstream token (re-login), upstream errors.
                _ = try await gw.get("/v1/tenants", key: "a-wrong-key-0000000000")
                _ = try await gw.token(form: [("grant_type", "client_credentials"), ("client_id", "sp-admin"), ("client_secret", "Not-The-Key-42")])
                sim.state.revokeTokens(product: .vspc)
                _ = try await gw.get(cloudTenantPath)
                sim.state.setFaults(SimulatorFaults(errorRate: 1), for: .vb365)
                _ = try await gw.get(organizationPath)
                sim.state.setFaults(SimulatorFaults(), for: .vb365)
                _ = try await gw.get("/readyz", key: nil)

                let secrets = secretValues + [TestKeys.portalAdmin, TestKeys.spAdmin, TestKeys.abcApp, TestKeys.signingKey, token,
                    "a-wrong-key-0000000000", "Not-The-Key-42"] + sim.state.issuedTokens
                #expect(sim.state.issuedTokens.count >= 4)
                #expect(gw.logs.all.count > 10)
                let leaks = gw.logs.lines(containing: secrets)
                #expect(leaks.isEmpty, "\(leaks.prefix(3))")
                #expect(gw.logs.all.contains { $0.contains("caller=sp-admin") && $0.contains("route=/v1/tenants/{id}") })
                #expect(gw.logs.all.contains { $0.contains("upstream=vb365-eu") && $0.contains("code=upstream.server_error") })
            }
        }
    }

    @Test("a hit the hot path answered logs the path it named and the request id it answered with, one made here or the caller's")
    func hotPathHitAccessLine() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                #expect(try await gw.get(cloudTenantPath, key: TestKeys.spAdmin).status == 200)
                let made = try await gw.get(cloudTenantPath, key: TestKeys.spAdmin)
                let given = try await gw.get(cloudTenantPath, key: TestKeys.spAdmin, headers: [("X-Request-Id", "caller-chosen.id-42")])
                #expect(made.header("x-cache") == "HIT")
                #expect(given.header("x-cache") == "HIT")
                #expect(given.header("x-request-id") == "caller-chosen.id-42")
                let madeID = try #require(made.header("x-request-id"))
                #expect(madeID.utf8.count == 36)
                for id in [madeID, "caller-chosen.id-42"] {
                    let logged = await eventually {
                        gw.logs.all.contains {
                            $0.contains("request_id=\(id)") && $0.contains("path=\(cloudTenantPath) ") && $0.contains("route=/v1/tenants/{id}")
                                && $0.contains("caller=sp-admin")
                        }
                    }
                    #expect(logged, "no access line for \(id): \(gw.logs.all.filter { $0.contains("request ") }.suffix(3))")
                }
                let metrics = try await gw.get("/metrics", key: nil).text
                #expect(metrics.contains(#"veeam_gateway_hot_path_responses_total{status="200"}"#), "the hits were the hot path's")
            }
        }
    }
}
