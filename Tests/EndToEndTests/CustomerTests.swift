import Foundation
import GatewayAccess
import GatewayTestSupport
import HTTPTransport
import Testing
import VeeamSimulator

/// `/v1/customers` against the simulator, whose VSPC maps its VB365 organizations to companies
/// with each kind of drift planted (docs/simulator.md, "Pass-through collections").
@Suite("End to end: customers across both products, and their drift", .serialized)
struct CustomerTests {
    static let abcTech = "vspc-main.c0a1b2c3-0001-4a1b-8c2d-0000000000a1"
    static let abc = "vb365-eu.cbc52c37-df7f-4b03-98f3-036e7d4b3127"
    static let contoso = "vb365-eu.5d0f3b52-7b58-4c3e-9d0a-3d2b1f6a9e11"

    static func object(_ response: UpstreamResponse) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any], "\(response.status) \(response.text.prefix(300))")
    }

    @Test("one call gives a customer's cloud tenants and VB365 organizations, each organization matched by id or by name, linked to /v1/tenants")
    func customers() async throws {
        try await withSimulator(vb365API: .v8) { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let list = try Self.object(try await gw.get("/v1/customers"))
                let data = try #require(list["data"] as? [[String: Any]])
                #expect(Set(data.compactMap { $0["name"] as? String }).isSuperset(of: ["ABC Tech", "Bravo Corp", "Contoso Ltd"]), "\(data.map { $0["name"] ?? "" })")
                let sources = try #require((list["meta"] as? [String: Any])?["sources"] as? [[String: Any]])
                #expect(sources.map { $0["status"] as? String } == ["ok"])

                let one = try Self.object(try await gw.get("/v1/customers/\(Self.abcTech)"))
                let customer = try #require(one["data"] as? [String: Any])
                let organizations = try #require(customer["organizations"] as? [[String: Any]])
                #expect(organizations.first?["match"] as? String == "id")
                #expect(organizations.first?["tenant"] as? String == Self.abc)
                #expect((organizations.first?["links"] as? [String: Any])?["tenant"] as? String == "/v1/tenants/" + Self.abc)
                let tenants = try #require(customer["cloudTenants"] as? [[String: Any]])
                #expect(tenants.compactMap { $0["name"] as? String } == ["charlie-vcd"])
                // The organization VSPC knows under another uid is found by (server, name).
                let contosoLtd = try #require(data.first { $0["name"] as? String == "Contoso Ltd" })
                let byName = try #require((contosoLtd["organizations"] as? [[String: Any]])?.first)
                #expect(byName["match"] as? String == "name" && byName["tenant"] as? String == Self.contoso)

                // /v1/upstreams says which VSPC server vb365-eu is, and the log said it once.
                let upstreams = try CustomerTests.object(try await gw.get("/v1/upstreams"))
                let vb365 = try #require((upstreams["data"] as? [[String: Any]])?.first { $0["name"] as? String == "vb365-eu" })
                let link = try #require((vb365["vspcServers"] as? [[String: Any]])?.first)
                #expect(link["upstream"] as? String == "vspc-main" && link["how"] as? String == "host")
                #expect(link["serverUid"] as? String == "b3650000-5e4f-4a3b-9c2d-1e0f00000365")
                #expect(gw.logs.all.filter { $0.contains("is one of a VSPC's VB365 servers") }.count == 1)

                #expect(try await gw.get("/v1/customers/not-an-id").status == 400)
                #expect(try await gw.get("/v1/customers/vspc-main.0f8c1f1e-6a38-4b8e-9a3b-5a1d5f0c1a01").status == 404)
                #expect(try await gw.get("/v1/customers", key: TestKeys.companyOwner).status == 403)
                #expect(try await gw.get("/v1/customers", key: nil).status == 401)
                // Cached: a second list reads nothing upstream.
                let reads = sim.state.counters(.vspc).resourceRequests
                _ = try await gw.get("/v1/customers?q=abc")
                #expect(sim.state.counters(.vspc).resourceRequests == reads)
            }
        }
    }

    @Test("the drift report finds the simulator's planted drift and nothing else")
    func drift() async throws {
        try await withSimulator(vb365API: .v8) { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let answer = try Self.object(try await gw.get("/v1/customers/drift"))
                let report = try #require((answer["data"] as? [[String: Any]])?.first)
                let drift = try #require(report["drift"] as? [String: Any])
                let unbilled = try #require(drift["unbilledOrganizations"] as? [[String: Any]])
                #expect(unbilled.compactMap { $0["name"] as? String } == ["Fabrikam Müller & Söhne"], "\(unbilled)")
                let dangling = try #require(drift["danglingMappings"] as? [[String: Any]])
                #expect(dangling.map { $0["reason"] as? String } == ["companyGone"])
                #expect(dangling.first?["companyUid"] as? String == "deadc0de-0000-4000-8000-000000000000")
                let nameOnly = try #require(drift["nameOnlyMatches"] as? [[String: Any]])
                #expect(nameOnly.map { $0["tenant"] as? String } == [Self.contoso])
                let unassigned = try #require(drift["unassignedTenants"] as? [[String: Any]])
                #expect(unassigned.compactMap { $0["name"] as? String } == ["Alpha"])
                #expect((drift["unreachableServers"] as? [Any])?.isEmpty == true, "the gateway's vb365-eu is the simulator's VB365 server (by host)")
                #expect(report["count"] as? Int == 4)
                // The status page shows the counts as last joined (it never joins itself).
                let status = try CustomerTests.object(try await gw.get("/v1/status"))
                let counts = try #require((status["customerDrift"] as? [[String: Any]])?.first)
                #expect(counts["upstream"] as? String == "vspc-main" && counts["count"] as? Int == 4)
                #expect((counts["byKind"] as? [String: Int])?["nameOnlyMatches"] == 1)
                #expect(counts["report"] as? String == "/v1/customers/drift")
            }
        }
    }
}

@Suite("End to end: who sees which customer", .serialized)
struct CustomerScopeTests {
    static let portalKey = "e2e-abc-portal-key-0123456789"
    static var portal: String {
        "  - id: abc-portal\n    keyHash: \"\(APIKey.hash(portalKey))\"\n    roles: []\n    scopes: [{ company: \"\(CustomerTests.abcTech)\" }]\n"
    }

    @Test("a company's portal sees that customer whole and no other; an organization's app sees its customer with only its organization; neither reads the drift")
    func scopes() async throws {
        try await withSimulator(vb365API: .v8) { sim in
            try await withGateway(vb365: sim, vspc: sim, extraCallers: Self.portal) { gw in
                let list = try CustomerTests.object(try await gw.get("/v1/customers", key: Self.portalKey))
                let data = try #require(list["data"] as? [[String: Any]])
                #expect(data.compactMap { $0["id"] as? String } == [CustomerTests.abcTech])
                #expect((data.first?["cloudTenants"] as? [Any])?.count == 1)
                #expect(((list["meta"] as? [String: Any])?["total"] as? Int) == 1)
                let sources = try #require((list["meta"] as? [String: Any])?["sources"] as? [[String: Any]])
                #expect(sources.first?["count"] as? Int == 1, "a scoped caller learns nothing of the other customers")
                #expect(try await gw.get("/v1/customers/\(CustomerTests.abcTech)", key: Self.portalKey).status == 200)
                #expect(try await gw.get("/v1/customers/vspc-main.9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b", key: Self.portalKey).status == 404)
                #expect(try await gw.get("/v1/customers/drift", key: Self.portalKey).status == 403)

                // abc's own app (scoped to the organization): its customer, with only abc in it.
                let app = try CustomerTests.object(try await gw.get("/v1/customers", key: TestKeys.abcApp))
                let seen = try #require(app["data"] as? [[String: Any]])
                #expect(seen.compactMap { $0["id"] as? String } == [CustomerTests.abcTech])
                #expect((seen.first?["organizations"] as? [[String: Any]])?.compactMap { $0["tenant"] as? String } == [CustomerTests.abc])
                #expect((seen.first?["cloudTenants"] as? [Any])?.isEmpty == true)
                #expect(try await gw.get("/v1/customers/drift", key: TestKeys.abcApp).status == 403)
                // A role outside seed 004 and no scope: refused.
                #expect(try await gw.get("/v1/customers", key: TestKeys.readOnly).status == 403)
            }
        }
    }
}
