import HTTPTransport
import Foundation
import GatewayTestSupport
import Testing
import VeeamSimulator

let organizationPath = "/v1/tenants/vb365-eu.cbc52c37-df7f-4b03-98f3-036e7d4b3127"
let otherOrganizationPath = "/v1/tenants/vb365-eu.5d0f3b52-7b58-4c3e-9d0a-3d2b1f6a9e11"
let cloudTenantPath = "/v1/tenants/vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4"

@Suite("End to end: callers, roles and scopes", .serialized)
struct AuthTests {
    /// Every role × every route, with the status each must get (seed 004 for cloud tenants).
    static let table: [(key: String, list: Int, listCount: Int, organization: Int, otherOrganization: Int, cloudTenant: Int, upstreams: Int)] = [
        (TestKeys.portalAdmin, 200, 6, 200, 200, 200, 200),
        (TestKeys.spGlobalAdmin, 200, 6, 200, 200, 200, 403),
        (TestKeys.spAdmin, 200, 6, 200, 200, 200, 403),
        (TestKeys.spOperator, 200, 0, 403, 403, 403, 403),
        (TestKeys.companyOwner, 200, 0, 403, 403, 403, 403),
        (TestKeys.readOnly, 200, 0, 403, 403, 403, 403),
        (TestKeys.abcApp, 200, 1, 200, 404, 404, 403),
    ]

    @Test("every role × every route gives the expected status")
    func roleTable() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                for row in Self.table {
                    let list = try await gw.get("/v1/tenants", key: row.key)
                    #expect(list.status == row.list, "\(row.key) list")
                    let data = (try JSONSerialization.jsonObject(with: Data(list.body)) as? [String: Any])?["data"] as? [Any]
                    #expect(data?.count == row.listCount, "\(row.key) list count")
                    #expect(try await gw.get(organizationPath, key: row.key).status == row.organization, "\(row.key) organization")
                    #expect(try await gw.get(otherOrganizationPath, key: row.key).status == row.otherOrganization, "\(row.key) other organization")
                    let tenant = try await gw.get(cloudTenantPath, key: row.key)
                    #expect(tenant.status == row.cloudTenant, "\(row.key) cloud tenant")
                    if tenant.status == 403 {
                        #expect(tenant.text.contains("PortalAdministrator, ServiceProviderAdministrator, ServiceProviderGlobalAdministrator"))
                        #expect(tenant.header("content-type") == "application/problem+json")
                    }
                    #expect(try await gw.get("/v1/upstreams", key: row.key).status == row.upstreams, "\(row.key) upstreams")
                }
            }
        }
    }

    @Test("refused callers cause zero upstream requests", arguments: [TestKeys.companyOwner, TestKeys.spOperator, "not-a-key-at-all-0000", ""])
    func refusedCallersCostNothing(key: String) async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                for path in ["/v1/tenants", organizationPath, cloudTenantPath, "/v1/tenants?product=vspc"] {
                    _ = try await gw.get(path, key: key.isEmpty ? nil : key)
                }
                #expect(sim.state.counters(.vb365).requests.isEmpty, "\(sim.state.counters(.vb365).requests)")
                #expect(sim.state.counters(.vspc).requests.isEmpty, "\(sim.state.counters(.vspc).requests)")
            }
        }
    }

    @Test("a scoped caller's list fetches only its own organizations' upstream and never VSPC")
    func scopedList() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let list = try await gw.json("/v1/tenants", key: TestKeys.abcApp)
                let data = try #require(list["data"] as? [[String: Any]])
                #expect(data.map { $0["id"] as? String } == ["vb365-eu.cbc52c37-df7f-4b03-98f3-036e7d4b3127"])
                #expect(sim.state.counters(.vspc).requests.isEmpty)
            }
        }
    }

    @Test("401s say nothing about whether a key exists; WWW-Authenticate is set")
    func unauthenticated() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let none = try await gw.get("/v1/tenants", key: nil)
                #expect(none.status == 401)
                #expect(none.header("www-authenticate")?.hasPrefix("Bearer") == true)
                let wrong1 = try await gw.get("/v1/tenants", key: "e2e-portal-admin-key-0123456780")
                let wrong2 = try await gw.get("/v1/tenants", key: "portal-admin")
                #expect(wrong1.status == 401)
                #expect(wrong2.status == 401)
                func stripped(_ r: UpstreamResponse) -> String { r.text.replacingOccurrences(of: #""requestId":"[^"]*""#, with: "", options: .regularExpression) }
                #expect(stripped(wrong1) == stripped(wrong2))
                let bearer = try await gw.get("/v1/tenants", key: nil, headers: [("Authorization", "Bearer " + TestKeys.spAdmin)])
                #expect(bearer.status == 200)
                #expect(try await gw.get("/healthz", key: nil).status == 200)
            }
        }
    }

    @Test("repeated failed authentication is slowed with 429 and Retry-After, even for the right key then")
    func failedAuthSlowdown() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                for i in 0..<5 { #expect(try await gw.get("/v1/tenants", key: "guess-\(i)-0000000000").status == 401) }
                let blocked = try await gw.get("/v1/tenants", key: "guess-5-0000000000")
                #expect(blocked.status == 429)
                #expect(Int(blocked.header("retry-after") ?? "") ?? 0 >= 1)
                #expect(try await gw.get("/v1/tenants", key: TestKeys.portalAdmin).status == 429)
            }
        }
    }

    @Test("each caller has a request rate; beyond it 429 with Retry-After")
    func callerRate() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                for _ in 0..<3 { #expect(try await gw.get("/healthz", key: TestKeys.limited).status == 200) }
                var statuses: [Int] = []
                for _ in 0..<4 { statuses.append(try await gw.get("/v1/tenants?upstream=vb365-eu", key: TestKeys.limited).status) }
                #expect(statuses.prefix(3) == [200, 200, 200])
                #expect(statuses.last == 429)
                let limited = try await gw.get("/v1/tenants", key: TestKeys.limited)
                #expect(limited.header("retry-after") != nil)
                #expect(try await gw.get("/v1/tenants?upstream=vb365-eu", key: TestKeys.portalAdmin).status == 200, "other callers are not affected")
            }
        }
    }

    @Test("request bodies and heads have size limits")
    func sizeLimits() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let big = String(repeating: "a", count: 20 * 1024)
                let body = try await gw.token(form: [("grant_type", "client_credentials"), ("client_id", "x"), ("client_secret", big)])
                #expect(body.status == 413)
                // An oversized head: 431 with the gateway's problem, recorded as any answer.
                let header = try await gw.get("/v1/tenants", headers: [("X-Padding", String(repeating: "b", count: 20 * 1024))])
                #expect(header.status == 431)
                #expect(header.header("content-type") == "application/problem+json")
                #expect(await eventually(within: .seconds(5)) { gw.logs.all.contains { $0.contains("route=/v1/tenants") && $0.contains("status=431") } })
                let metrics = try await gw.get("/metrics", key: nil).text
                #expect(metrics.contains(#"veeam_gateway_http_requests_total{route="/v1/tenants",method="GET",status="431"} 1"#), "\(metrics.prefix(600))")
                let longKey = try await gw.get("/v1/tenants", key: String(repeating: "k", count: 4096))
                #expect(longKey.status == 401)
                #expect(sim.state.counters(.vspc).requests.isEmpty)
            }
        }
    }

    @Test("readiness fails, naming the account and its role, when the gateway's VSPC account lacks seed 004's roles")
    func readiness() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let ready = try await gw.get("/readyz", key: nil)
                #expect(ready.status == 200, "\(ready.text)")
            }
            try await withGateway(vb365: sim, vspc: sim, vspcPassword: "company-owner.pw", vspcUser: "company-owner") { gw in
                // Anonymous callers learn not ready, nothing more; an administrator learns why.
                let anonymous = try await gw.get("/readyz", key: nil)
                #expect(anonymous.status == 503)
                #expect(!anonymous.text.contains("company-owner"))
                let response = try await gw.get("/readyz")
                #expect(response.status == 503)
                #expect(response.text.contains("company-owner"))
                #expect(response.text.contains("CompanyOwner"))
                #expect(!response.text.contains("Company-Owner-Pass-6"))
            }
        }
    }

    @Test("a scoped caller's list says nothing of other organizations: its count, and no problem of another account")
    func scopedSourcesShowOnlyTheirShare() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim, cache: "{ maxBytes: 0 }") { gw in
                func vb365Source(_ key: String) async throws -> [String: Any] {
                    let list = try await gw.json("/v1/tenants?upstream=vb365-eu", key: key)
                    return try #require(((list["meta"] as? [String: Any])?["sources"] as? [[String: Any]])?.first, "\(list)")
                }
                #expect(try await vb365Source(TestKeys.portalAdmin)["count"] as? Int == 3)
                #expect(try await vb365Source(TestKeys.abcApp)["count"] as? Int == 1, "the scoped app learns how many organizations exist")
                // contoso's account starts failing (its password file now holds a wrong one).
                let directory = URL(fileURLWithPath: gw.configPath).deletingLastPathComponent().path
                try Data("Not-The-Password-9\n".utf8).write(to: URL(fileURLWithPath: directory + "/contoso.pw"))
                sim.state.revokeTokens(product: .vb365, username: "svc-backup@contoso.local")
                let admin = try await vb365Source(TestKeys.portalAdmin)
                #expect(admin["status"] as? String == "error")
                #expect(admin["count"] as? Int == 2)
                #expect(admin["problem"] is [String: Any])
                let app = try await vb365Source(TestKeys.abcApp)
                #expect(app["status"] as? String == "ok", "\(app)")
                #expect(app["count"] as? Int == 1)
                #expect(app["problem"] is NSNull || app["problem"] == nil, "another organization's failure is not the scoped app's business")
            }
        }
    }

    @Test("behind a trusted proxy, failed authentication counts against the client X-Forwarded-For names, on both paths; otherwise the header is ignored")
    func trustedProxies() async throws {
        let org = "/v1/tenants/vb365-eu.cbc52c37-df7f-4b03-98f3-036e7d4b3127"
        let fromA: [(name: String, value: String)] = [("X-Forwarded-For", "198.51.100.1")]
        let fromB: [(name: String, value: String)] = [("X-Forwarded-For", "198.51.100.2")]
        let spoofedA: [(name: String, value: String)] = [("X-Forwarded-For", "192.0.2.50, 198.51.100.1")]
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim, listen: "trustedProxies: [127.0.0.1/32]") { gw in
                let s1 = try await gw.get(org).status
                #expect(s1 == 200)  // now a cache hit: the hot path answers it
                for _ in 0..<5 {
                    let refused = try await gw.get(org, key: "not-a-key-at-all-0000", headers: fromA).status
                    #expect(refused == 401)
                }
                let s2 = try await gw.get(org, key: "not-a-key-at-all-0000", headers: fromA).status
                #expect(s2 == 429)
                // Another client behind the same proxy is not locked out, on either path.
                let s3 = try await gw.get(org, headers: fromB).status
                #expect(s3 == 200)
                let s4 = try await gw.get("/v1/upstreams", headers: fromB).status
                #expect(s4 == 200)
                // The locked-out client is, even with a good key, on either path.
                let s5 = try await gw.get(org, headers: fromA).status
                #expect(s5 == 429)
                let s6 = try await gw.get("/v1/upstreams", headers: fromA).status
                #expect(s6 == 429)
                // A spoofed entry left of the proxy's own does not help it.
                let s7 = try await gw.get(org, headers: spoofedA).status
                #expect(s7 == 429)
            }
            try await withGateway(vb365: sim, vspc: sim) { gw in
                for _ in 0..<5 { _ = try await gw.get(org, key: "not-a-key-at-all-0000", headers: fromA) }
                // No trusted proxies: the header is the client's word, so the peer itself is locked out.
                let s8 = try await gw.get(org, headers: fromB).status
                #expect(s8 == 429)
            }
        }
    }
}
