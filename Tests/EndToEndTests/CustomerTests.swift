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
    static let dormant = "vspc-main.c0a1b2c3-0004-4a1b-8c2d-0000000000d4"
    static let charlie = "vspc-main.7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"
    static let bravo = "vspc-main.0f8e7d6c-5b4a-4392-8170-6e5d4c3b2a19"
    static let alpha = "vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4"

    /// A tenant answer's `links.customer`, if any.
    static func customerLink(_ gw: RunningGateway, _ id: String, key: String? = TestKeys.portalAdmin) async throws -> String? {
        let answer = try object(try await gw.get("/v1/tenants/\(id)", key: key))
        let data = try #require(answer["data"] as? [String: Any], "\(answer)")
        return (data["links"] as? [String: Any])?["customer"] as? String
    }

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

                // A company whose organization is on a server the gateway does not read: known from the mapping.
                let dormantHoldings = try #require(data.first { $0["id"] as? String == Self.dormant })
                let mappingOnly = try #require((dormantHoldings["organizations"] as? [[String: Any]])?.first)
                #expect(mappingOnly["match"] as? String == "mappingOnly" && mappingOnly["tenant"] == nil)
                #expect((mappingOnly["server"] as? [String: Any])?["name"] as? String == "vb365-branch.sim.local")

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

    @Test("a tenant's answer links its customer once the customers are joined, single and listed; a read never joins")
    func tenantLinks() async throws {
        try await withSimulator(vb365API: .v8) { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let before = sim.state.counters(.vspc).resourceRequests
                #expect(try await Self.customerLink(gw, Self.abc) == nil)
                #expect(sim.state.counters(.vspc).resourceRequests == before, "reading an organization asks VSPC nothing")
                _ = try await gw.get("/v1/customers")
                // The entry filled before the join is made again with its link.
                #expect(try await Self.customerLink(gw, Self.abc) == "/v1/customers/" + Self.abcTech)
                #expect(try await Self.customerLink(gw, Self.contoso) == "/v1/customers/vspc-main.8d7e6f5a-4b3c-4d2e-9f1a-0b1c2d3e4f5a")
                #expect(try await Self.customerLink(gw, Self.charlie) == "/v1/customers/" + Self.abcTech)
                #expect(try await Self.customerLink(gw, Self.bravo) == "/v1/customers/vspc-main.9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b")
                #expect(try await Self.customerLink(gw, Self.alpha) == nil, "assigned to no company")
                #expect(try await Self.customerLink(gw, "vb365-eu.9a7c1e40-2f6b-4d8e-b3a5-0c4d2e6f8a19") == nil, "its mapping names a company that is gone")
                let list = try Self.object(try await gw.get("/v1/tenants?limit=100"))
                let links = Dictionary(
                    uniqueKeysWithValues: try #require(list["data"] as? [[String: Any]]).compactMap { tenant -> (String, String)? in
                        guard let id = tenant["id"] as? String else { return nil }
                        return (id, ((tenant["links"] as? [String: Any])?["customer"] as? String) ?? "-")
                    })
                #expect(links[Self.abc] == "/v1/customers/" + Self.abcTech && links[Self.charlie] == "/v1/customers/" + Self.abcTech)
                #expect(links[Self.alpha] == "-")
            }
        }
    }

    @Test("a VB365 server whose organizations the gateway cannot read is reported unreadable, with the customers it affects; the rest of the join stands")
    func unreadableServer() async throws {
        try await withSimulator(vb365API: .v8) { sim in
            sim.state.setFaults(SimulatorFaults(errorRate: 1.0), for: .vb365)
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let answer = try Self.object(try await gw.get("/v1/customers/drift"))
                let report = try #require((answer["data"] as? [[String: Any]])?.first)
                #expect((report["source"] as? [String: Any])?["status"] as? String == "ok")
                let servers = try #require((report["drift"] as? [String: Any])?["unreachableServers"] as? [[String: Any]])
                let unreadable = try #require(servers.first { $0["reason"] as? String == "unreadable" }, "\(servers)")
                #expect(unreadable["upstream"] as? String == "vb365-eu")
                #expect(Set(unreadable["customers"] as? [String] ?? []) == [Self.abcTech, "vspc-main.8d7e6f5a-4b3c-4d2e-9f1a-0b1c2d3e4f5a"])
                #expect(servers.contains { $0["reason"] as? String == "notConfigured" })
                // The customers are still there, their organizations known from the mappings.
                let abc = try Self.object(try await gw.get("/v1/customers/\(Self.abcTech)"))
                let organization = try #require(((abc["data"] as? [String: Any])?["organizations"] as? [[String: Any]])?.first)
                #expect(organization["match"] as? String == "mappingOnly")
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
                #expect(dangling.map { $0["reason"] as? String } == ["companyGone", "organizationGone"])
                #expect(dangling.first?["companyUid"] as? String == "deadc0de-0000-4000-8000-000000000000")
                #expect(dangling.last?["vb365OrganizationUid"] as? String == "0ff0ff00-0000-4000-8000-00000000901e")
                #expect(dangling.last?["companyUid"] as? String == "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b")
                let nameOnly = try #require(drift["nameOnlyMatches"] as? [[String: Any]])
                #expect(nameOnly.map { $0["tenant"] as? String } == [Self.contoso])
                let unassigned = try #require(drift["unassignedTenants"] as? [[String: Any]])
                #expect(unassigned.compactMap { $0["name"] as? String } == ["Alpha"])
                // The branch server no upstream of the gateway is (vb365-eu is the simulator's, by host).
                let unreachable = try #require(drift["unreachableServers"] as? [[String: Any]])
                #expect(unreachable.map { $0["name"] as? String } == ["vb365-branch.sim.local"])
                #expect(unreachable.first?["reason"] as? String == "notConfigured")
                #expect(unreachable.first?["customers"] as? [String] == [Self.dormant])
                #expect(report["count"] as? Int == 6)
                // The status page shows the counts as last joined (it never joins itself).
                let status = try CustomerTests.object(try await gw.get("/v1/status"))
                let counts = try #require((status["customerDrift"] as? [[String: Any]])?.first)
                #expect(counts["upstream"] as? String == "vspc-main" && counts["count"] as? Int == 6)
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
                // The company's tenants of both products, and no other.
                #expect(try await gw.get("/v1/tenants/\(CustomerTests.abc)", key: Self.portalKey).status == 200)
                #expect(try await gw.get("/v1/tenants/\(CustomerTests.charlie)", key: Self.portalKey).status == 200)
                #expect(try await gw.get("/v1/tenants/\(CustomerTests.bravo)", key: Self.portalKey).status == 404)
                // A role outside seed 004 and no scope: refused.
                #expect(try await gw.get("/v1/customers", key: TestKeys.readOnly).status == 403)
            }
        }
    }

    @Test("a company's portal reads its customer's tenants of both products, and no other, from its first request on")
    func companyTenants() async throws {
        try await withSimulator(vb365API: .v8) { sim in
            try await withGateway(vb365: sim, vspc: sim, extraCallers: Self.portal) { gw in
                // Nothing has joined the customers yet: the first request waits for the join.
                #expect(try await gw.get("/v1/tenants/\(CustomerTests.abc)", key: Self.portalKey).status == 200)
                #expect(try await gw.get("/v1/tenants/\(CustomerTests.charlie)", key: Self.portalKey).status == 200)
                for other in [CustomerTests.bravo, CustomerTests.contoso, CustomerTests.alpha] {
                    #expect(try await gw.get("/v1/tenants/\(other)", key: Self.portalKey).status == 404, "\(other)")
                }
                let list = try CustomerTests.object(try await gw.get("/v1/tenants?limit=100", key: Self.portalKey))
                let ids = try #require(list["data"] as? [[String: Any]]).compactMap { $0["id"] as? String }
                #expect(Set(ids) == [CustomerTests.abc, CustomerTests.charlie], "\(ids)")
                // A hit answers the same.
                #expect(try await gw.get("/v1/tenants/\(CustomerTests.abc)", key: Self.portalKey).status == 200)
                #expect(try await gw.get("/v1/tenants/\(CustomerTests.bravo)", key: Self.portalKey).status == 404)
            }
        }
    }
}
