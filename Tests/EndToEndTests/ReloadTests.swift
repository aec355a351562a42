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

                // Broken: an unknown role (in every caller that had that role) and a cache size
                // that is none. The running configuration (with the added caller) stays, and the
                // log names every error.
                let unknownRoles = added.components(separatedBy: "roles: [ServiceProviderAdministrator]").count - 1
                let broken = added.replacingOccurrences(of: "roles: [ServiceProviderAdministrator]", with: "roles: [SuperUser]")
                    .replacingOccurrences(of: "callers:\n", with: "cache: { maxBytes: lots }\ncallers:\n")
                try Data(broken.utf8).write(to: URL(fileURLWithPath: gw.configPath))
                #expect(await gw.state.reload() == false)
                #expect(try await gw.get(cloudTenantPath, key: newKey).status == 200)
                let refusal = try #require(gw.logs.all.first { $0.contains("reload refused") })
                #expect(refusal.contains(gw.configPath) && refusal.contains("errors=\(unknownRoles + 1)"), "\(refusal)")
                let errors = gw.logs.all.filter { $0.contains("configuration error") }
                #expect(unknownRoles >= 2 && errors.count == unknownRoles + 1, "\(errors)")
                #expect(errors.contains { $0.contains("callers[0].roles[0]") && $0.contains("unknown role SuperUser") })
                #expect(errors.contains { $0.contains("cache.maxBytes") && $0.contains("must be a size") })
            }
        }
    }
}
