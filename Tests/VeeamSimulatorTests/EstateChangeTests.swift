import CurlHTTP
import Foundation
import GatewayTestSupport
import HTTPTransport
import Testing
import VeeamSimulator

private let patch = HTTPMethod(rawValue: "PATCH")
private let abcTechUid = "c0a1b2c3-0001-4a1b-8c2d-0000000000a1"
private let bravoCorpUid = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"

/// One VSPC list read whole: its items and `meta.pagingInfo.total`.
struct VSPCList {
    var items: [JSONValue]
    var total: Int?
}

extension SimClient {
    /// A call to the simulator's admin routes (on the VSPC listener unless told), with a JSON body.
    func admin(_ method: HTTPMethod, _ path: String, json: String? = nil, on product: SimulatedProduct = .vspc) async throws -> UpstreamResponse {
        let base = product == .vb365 ? sim.vb365BaseURL : sim.vspcBaseURL
        return try await client.perform(
            UpstreamRequest(method: method, url: base + path, body: json.map { .json(Array($0.utf8)) }),
            options: sim.trustingOptions()
        )
    }

    /// The `data` items of a VSPC list read with `token` (every page's worth: `limit=500`).
    func vspcList(_ path: String, token: String) async throws -> VSPCList {
        let separator = path.contains("?") ? "&" : "?"
        let response = try await send(.vspc, .get, "/api/v3" + path + separator + "limit=500", token: token)
        #expect(response.status == 200, "\(path): \(response.text)")
        let body = try json(response)
        guard case .int(let total) = body["meta"]?["pagingInfo"]?["total"] else { return VSPCList(items: jsonArray(body["data"]), total: nil) }
        return VSPCList(items: jsonArray(body["data"]), total: total)
    }
}

/// The items of a JSON array (none for anything else).
private func jsonArray(_ value: JSONValue?) -> [JSONValue] {
    if case .array(let items) = value { return items }
    return []
}

/// What a record of VSPC's activity log says, for comparing.
private func logTypes(_ records: [JSONValue]) -> [String] {
    records.compactMap { $0["activityLogType"]?.stringValue }
}

@Suite("Simulator: changing the estate while running", .serialized)
struct EstateChangeTests {
    @Test("a VB365 organization created, edited and removed through the admin API: VB365, VSPC and VSPC's activity log follow")
    func organizationLifecycle() async throws {
        try await withSimClient { c in
            let admin = try await c.login(.vb365, adminUser, adminPassword)
            let vspc = try await c.login(.vspc, "gateway-svc", "Gateway-Svc-Pass-1")
            let before = jsonArray(try c.json(try await c.send(.vb365, .get, "/v5/Organizations", token: admin.access))).count

            let create = #"{"name": "newco.onmicrosoft.com", "username": "backup@newco.onmicrosoft.com", "password": "Newco-Pass-1", "isBackedup": true, "companyUid": "\#(abcTechUid)"}"#
            let created = try await c.admin(.post, "/_sim/vb365/organizations", json: create)
            #expect(created.status == 201, "\(created.text)")
            let id = try #require(try c.json(created)["id"]?.stringValue)
            #expect(UUID(uuidString: id) != nil && id == id.lowercased())

            // VB365: the administrator lists it; its own account logs in and reads it.
            let listed = jsonArray(try c.json(try await c.send(.vb365, .get, "/v5/Organizations", token: admin.access)))
            #expect(listed.count == before + 1)
            #expect(listed.contains { $0["id"]?.stringValue == id && $0["name"] == .string("newco.onmicrosoft.com") })
            let own = try await c.login(.vb365, "backup@newco.onmicrosoft.com", "Newco-Pass-1")
            let mine = try c.json(try await c.send(.vb365, .get, "/v5/Organization", token: own.access))
            #expect(mine["id"]?.stringValue == id)
            #expect(mine["isBackedup"] == .bool(true))
            #expect(mine["lastBackuptime"]?.stringValue != nil)

            // VSPC: listed, mapped to ABC Tech; the activity log has its creation.
            let organizations = try await c.vspcList("/infrastructure/vb365Servers/organizations", token: vspc.access).items
            let seen = try #require(organizations.first { $0["instanceUid"]?.stringValue == id })
            #expect(seen["name"] == .string("newco.onmicrosoft.com"))
            #expect(seen["mappedOrganizationUid"] == .string(abcTechUid))
            let mappings = try await c.vspcList("/infrastructure/vb365Servers/organizations/companyMappings", token: vspc.access).items
            #expect(mappings.first(where: { $0["vb365OrganizationUid"]?.stringValue == id })?["companyUid"] == .string(abcTechUid))
            var log = try await c.vspcList("/eventLogs/activityLogs", token: vspc.access)
            #expect(log.total == 1)
            #expect(logTypes(log.items) == ["VB365OrganizationCreated"])
            #expect(log.items.first?["activityKind"] == .string("External"))
            #expect(log.items.first?["organizationUid"] == .string(abcTechUid))
            #expect(log.items.first?["userUid"] == .null)
            #expect(log.items.first?["message"]?.stringValue?.contains(id) == true)
            #expect(log.items.first?["date"]?.stringValue?.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z/) != nil)

            // Edited (the id in upper case): VB365 and VSPC answer the new name and backup state.
            let edited = try await c.admin(patch, "/_sim/vb365/organizations/\(id.uppercased())", json: #"{"name": "renamed.onmicrosoft.com", "isBackedup": false}"#)
            #expect(edited.status == 200, "\(edited.text)")
            #expect(try c.json(edited)["name"] == .string("renamed.onmicrosoft.com"))
            #expect(try c.json(edited)["lastBackuptime"] == .null)
            let one = try c.json(try await c.send(.vb365, .get, "/v5/Organizations/\(id)", token: admin.access))
            #expect(one["name"] == .string("renamed.onmicrosoft.com"))
            #expect(one["isBackedup"] == .bool(false))
            let renamed = try await c.vspcList("/infrastructure/vb365Servers/organizations", token: vspc.access).items
            let entry = renamed.first(where: { $0["instanceUid"]?.stringValue == id })
            #expect(entry?["name"] == .string("renamed.onmicrosoft.com"))
            #expect(entry?["isBackedUp"] == .bool(false))

            // Bad input: 400 with a message; an unknown id: 404.
            let notBool = try await c.admin(patch, "/_sim/vb365/organizations/\(id)", json: #"{"isBackedup": "yes"}"#)
            #expect(notBool.status == 400)
            #expect(try c.json(notBool)["message"]?.stringValue != nil)
            #expect(try await c.admin(patch, "/_sim/vb365/organizations/\(id)", json: #"{"description": "x"}"#).status == 400)
            #expect(try await c.admin(patch, "/_sim/vb365/organizations/\(UUID().uuidString)", json: #"{"name": "x"}"#).status == 404)
            #expect(try await c.admin(.post, "/_sim/vb365/organizations", json: #"{"name": "x", "username": "y"}"#).status == 400)
            let taken = #"{"name": "again", "username": "BACKUP@newco.onmicrosoft.com", "password": "p"}"#
            #expect(try await c.admin(.post, "/_sim/vb365/organizations", json: taken).status == 400)

            // Removed: gone from VB365 (no login, its token revoked) and from VSPC's list.
            let removed = try await c.admin(.delete, "/_sim/vb365/organizations/\(id)")
            #expect(removed.status == 204)
            let after = jsonArray(try c.json(try await c.send(.vb365, .get, "/v5/Organizations", token: admin.access)))
            #expect(after.count == before)
            #expect(!after.contains { $0["id"]?.stringValue == id })
            let refused = try await c.send(
                .vb365, .post, "/v5/Token", form: [("grant_type", "password"), ("username", "backup@newco.onmicrosoft.com"), ("password", "Newco-Pass-1")])
            #expect(refused.status == 400)
            #expect(try await c.send(.vb365, .get, "/v5/Organization", token: own.access).status == 401)
            let gone = try await c.vspcList("/infrastructure/vb365Servers/organizations", token: vspc.access).items
            #expect(!gone.contains { $0["instanceUid"]?.stringValue == id })
            #expect(try await c.admin(.delete, "/_sim/vb365/organizations/\(id)").status == 404)

            // The log: newest first by default, oldest first when asked.
            log = try await c.vspcList("/eventLogs/activityLogs", token: vspc.access)
            #expect(log.total == 2)
            #expect(logTypes(log.items) == ["VB365OrganizationDeleted", "VB365OrganizationCreated"])
            let ascending = try await c.vspcList("/eventLogs/activityLogs?dateSortingDirection=ascending", token: vspc.access)
            #expect(logTypes(ascending.items) == ["VB365OrganizationCreated", "VB365OrganizationDeleted"])
        }
    }

    @Test("a VSPC tenant created, edited and removed through the admin API: the tenants and the activity log follow")
    func tenantLifecycle() async throws {
        try await withSimClient { c in
            let vspc = try await c.login(.vspc, "sp-admin", "Sp-Admin-Pass-4")
            let before = try await c.vspcList("/infrastructure/sites/tenants", token: vspc.access)

            let created = try await c.admin(.post, "/_sim/vspc/tenants", json: #"{"name": "Delta", "assignedForCompany": "\#(bravoCorpUid)"}"#)
            #expect(created.status == 201, "\(created.text)")
            let uid = try #require(try c.json(created)["instanceUid"]?.stringValue)
            #expect(UUID(uuidString: uid) != nil && uid == uid.lowercased())

            let listed = try await c.vspcList("/infrastructure/sites/tenants", token: vspc.access)
            #expect(listed.total == (before.total ?? -1) + 1)
            let tenant = try #require(listed.items.last)
            #expect(tenant["instanceUid"] == .string(uid))
            #expect(tenant["name"] == .string("Delta"))
            #expect(tenant["isEnabled"] == .bool(true))
            #expect(tenant["maxConcurrentTask"] == .int(1))
            #expect(tenant["assignedForCompany"] == .string(bravoCorpUid))
            let one = try await c.send(.vspc, .get, "/api/v3/infrastructure/sites/tenants/\(uid)", token: vspc.access)
            #expect(one.status == 200)
            #expect(try c.json(one)["data"]?["name"] == .string("Delta"))

            // Edited (the uid in upper case); instanceUid never changes.
            let body = #"{"name": "Delta Prime", "isEnabled": false, "instanceUid": "\#(UUID().uuidString)"}"#
            let edited = try await c.admin(patch, "/_sim/vspc/tenants/\(uid.uppercased())", json: body)
            #expect(edited.status == 200, "\(edited.text)")
            #expect(try c.json(edited)["instanceUid"] == .string(uid))
            let read = try c.json(try await c.send(.vspc, .get, "/api/v3/infrastructure/sites/tenants/\(uid)", token: vspc.access))
            #expect(read["data"]?["name"] == .string("Delta Prime"))
            #expect(read["data"]?["isEnabled"] == .bool(false))

            // Bad input: 400; an unknown uid: 404.
            #expect(try await c.admin(.post, "/_sim/vspc/tenants", json: #"{"type": "General"}"#).status == 400)
            #expect(try await c.admin(.post, "/_sim/vspc/tenants", json: "[1]").status == 400)
            let taken = #"{"name": "Alpha again", "instanceUid": "C386D34C-0AB6-4E13-B30A-67FCB05B83E4"}"#
            #expect(try await c.admin(.post, "/_sim/vspc/tenants", json: taken).status == 400)
            #expect(try await c.admin(.post, "/_sim/vspc/tenants", json: #"{"name": "x", "assignedForCompany": "nope"}"#).status == 400)
            #expect(try await c.admin(patch, "/_sim/vspc/tenants/\(UUID().uuidString)", json: #"{"name": "x"}"#).status == 404)

            // Removed.
            #expect(try await c.admin(.delete, "/_sim/vspc/tenants/\(uid)").status == 204)
            #expect(try await c.send(.vspc, .get, "/api/v3/infrastructure/sites/tenants/\(uid)", token: vspc.access).status == 404)
            #expect(try await c.vspcList("/infrastructure/sites/tenants", token: vspc.access).total == before.total)
            #expect(try await c.admin(.delete, "/_sim/vspc/tenants/\(uid)").status == 404)

            // The log: one record per change, newest first, under the tenant's company, paged.
            let log = try await c.vspcList("/eventLogs/activityLogs", token: vspc.access)
            #expect(log.total == 3)
            #expect(logTypes(log.items) == ["TenantRemoved", "TenantModified", "TenantCreated"])
            #expect(log.items.allSatisfy { $0["activityKind"] == .string("Internal") && $0["organizationUid"] == .string(bravoCorpUid) })
            #expect(log.items.last?["message"]?.stringValue?.contains("Delta") == true)
            let page = try c.json(try await c.send(.vspc, .get, "/api/v3/eventLogs/activityLogs?limit=1&offset=1", token: vspc.access))
            #expect(logTypes(jsonArray(page["data"])) == ["TenantModified"])
            #expect(page["meta"]?["pagingInfo"] == .object(["total": .int(3), "count": .int(1), "offset": .int(1)]))
            let external = try await c.vspcList("/eventLogs/activityLogs?activityLogKind=External", token: vspc.access)
            #expect(external.total == 0)
            let badSort = try await c.send(.vspc, .get, "/api/v3/eventLogs/activityLogs?dateSortingDirection=sideways", token: vspc.access)
            #expect(badSort.status == 400)
            #expect(try await c.send(.vspc, .get, "/api/v3/eventLogs/activityLogs?limit=501", token: vspc.access).status == 400)
            let operator_ = try await c.login(.vspc, "sp-operator", "Sp-Operator-Pass-5")
            #expect(try await c.send(.vspc, .get, "/api/v3/eventLogs/activityLogs", token: operator_.access).status == 403)
            // Counted as every VSPC read: the six reads above, refused ones included.
            #expect(c.sim.state.counters(.vspc).requests["GET /api/v3/eventLogs/activityLogs"] == 6)
        }
    }

    @Test("a generated estate's company mappings follow a change: a mapped organization added, a generated one removed")
    func generatedMappings() async throws {
        try await withSimClient(generate: 5) { c in
            let vspc = try await c.login(.vspc, "gateway-svc", "Gateway-Svc-Pass-1")
            let path = "/infrastructure/vb365Servers/organizations/companyMappings"
            let before = try await c.vspcList(path, token: vspc.access)
            let company2 = "20000000-0000-4000-8000-000000000002"
            let create = #"{"name": "mapped.onmicrosoft.com", "username": "backup@mapped.onmicrosoft.com", "password": "p", "companyUid": "\#(company2)"}"#
            let id = try #require(try c.json(try await c.admin(.post, "/_sim/vb365/organizations", json: create, on: .vb365))["id"]?.stringValue)
            let added = try await c.vspcList(path, token: vspc.access)
            #expect(added.total == (before.total ?? -1) + 1)
            #expect(added.items.contains { $0["vb365OrganizationUid"]?.stringValue == id && $0["companyUid"] == .string(company2) })

            let generated = "00000000-0000-4000-8000-000000000001"
            #expect(try await c.admin(.delete, "/_sim/vb365/organizations/\(generated)").status == 204)
            let removed = try await c.vspcList(path, token: vspc.access)
            #expect(removed.total == before.total)
            #expect(!removed.items.contains { $0["vb365OrganizationUid"]?.stringValue == generated })
            let log = try await c.vspcList("/eventLogs/activityLogs", token: vspc.access)
            #expect(logTypes(log.items) == ["VB365OrganizationDeleted", "VB365OrganizationCreated"])
            // Generated organization 1 belongs to generated company 1.
            #expect(log.items.first?["organizationUid"] == .string("20000000-0000-4000-8000-000000000001"))
            #expect(c.sim.state.estateGeneration == 2)
        }
    }

    @Test("changeEstate replaces the estate only when its body returns, and keeps a shard's organizations in step")
    func changeEstate() throws {
        var fixtures = SimulatorFixtures(vb365Administrators: [], organizations: [], vspcUsers: [], tenants: [])
        fixtures.generate(count: 8, servers: 4, shard: 1)
        let state = SimulatorState(tokenLifetime: .seconds(60), fixtures: fixtures)
        state.changeEstate { fixtures in
            fixtures.organizations.removeAll { $0.id == "00000000-0000-4000-8000-000000000002" }
        }
        #expect(state.fixtures.organizations.count == 7)
        #expect(state.fixtures.vb365Organizations.map(\.id) == ["00000000-0000-4000-8000-000000000006"])
        #expect(state.estateGeneration == 1)

        struct Refused: Error {}
        #expect(throws: Refused.self) {
            try state.changeEstate { fixtures -> Void in
                fixtures.tenants.removeAll()
                throw Refused()
            }
        }
        #expect(state.fixtures.tenants.count == 8)
        #expect(state.estateGeneration == 1)
    }
}
