import GatewayAccess
import HTTPTransport
import Foundation
import GatewayCore
import GatewayTestSupport
import Testing

@Suite("End to end: configuration reload", .serialized)
struct ReloadTests {
    @Test("a valid new config is swapped in whole; an invalid one keeps the old and logs exactly why")
    func reload() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let newKey = "e2e-added-after-reload-0123456789"
                #expect(try await gw.get("/v1/tenants", key: newKey).status == 401)
                let original = try String(contentsOfFile: gw.configPath, encoding: .utf8)
                let added = original.replacingOccurrences(
                    of: "callers:\n",
                    with: "callers:\n  - { id: added, keyHash: \"\(APIKey.hash(newKey))\", roles: [ServiceProviderAdministrator] }\n")
                try Data(added.utf8).write(to: URL(fileURLWithPath: gw.configPath))
                #expect(await gw.state.reload())
                #expect(try await gw.get(cloudTenantPath, key: newKey).status == 200)
                #expect(try await gw.get("/v1/upstreams", key: newKey).status == 403)
                #expect(gw.logs.all.contains { $0.contains("configuration reloaded") })

                // Broken: an unknown role. The running configuration (with the added caller) stays.
                try Data(added.replacingOccurrences(of: "roles: [ServiceProviderAdministrator]", with: "roles: [SuperUser]").utf8)
                    .write(to: URL(fileURLWithPath: gw.configPath))
                #expect(await gw.state.reload() == false)
                #expect(try await gw.get(cloudTenantPath, key: newKey).status == 200)
                let refusal = try #require(gw.logs.all.first { $0.contains("reload refused") })
                #expect(refusal.contains("callers[0].roles[0]"))
                #expect(refusal.contains("unknown role SuperUser"))
                #expect(refusal.contains(gw.configPath))
            }
        }
    }
}
