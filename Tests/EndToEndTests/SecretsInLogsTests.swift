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
}
