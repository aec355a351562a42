import CurlHTTP
import HTTPTransport
import Foundation
import GatewayTestSupport
import Testing
import VeeamSimulator

/// A small client for the simulator, over the real CurlHTTP stack and TLS.
struct SimClient {
    let client: CurlClient
    let sim: RunningSimulator

    func send(
        _ product: SimulatedProduct, _ method: HTTPMethod = .get, _ path: String, token: String? = nil, form: [(String, String)]? = nil,
        headers extra: [(name: String, value: String)] = []
    ) async throws -> UpstreamResponse {
        let base = product == .vb365 ? sim.vb365BaseURL : sim.vspcBaseURL
        var headers: [(name: String, value: String)] = extra
        if let token { headers.append(("Authorization", "Bearer \(token)")) }
        return try await client.perform(
            UpstreamRequest(method: method, url: base + path, headers: headers, body: form.map { .form($0) }),
            options: sim.trustingOptions()
        )
    }

    func login(_ product: SimulatedProduct, _ username: String, _ password: String) async throws -> (access: String, refresh: String) {
        let path = product == .vb365 ? "/v5/Token" : "/api/v3/token"
        let response = try await send(product, .post, path, form: [("grant_type", "password"), ("username", username), ("password", password)])
        #expect(response.status == 200, "\(response.text)")
        let json = try json(response)
        return (try #require(json["access_token"]?.stringValue), try #require(json["refresh_token"]?.stringValue))
    }

    func json(_ response: UpstreamResponse) throws -> JSONValue {
        try JSONValue.parse(Data(response.body))
    }
}

func withSimClient<T: Sendable>(
    dialect: SimulatorDialect = .seed, vb365API: SimulatorVB365API = .v5, generate: Int = 0, faults: [SimulatedProduct: SimulatorFaults] = [:],
    _ body: (SimClient) async throws -> T
) async throws -> T {
    let client = try CurlClient()
    defer { Task { await client.shutdown() } }
    return try await withSimulator(dialect: dialect, vb365API: vb365API, generate: generate, faults: faults) { sim in
        try await body(SimClient(client: client, sim: sim))
    }
}

let abcUser = "backup-admin@abc.onmicrosoft.com"
let abcPassword = "Abc-Org-Pass-1"

@Suite("Simulator: the seed endpoints", .serialized)
struct SeedEndpointTests {
    @Test("GET /v5/Organization equals seed 000's example body, field for field")
    func organization() async throws {
        try await withSimClient { c in
            let token = try await c.login(.vb365, abcUser, abcPassword)
            let response = try await c.send(.vb365, .get, "/v5/Organization", token: token.access)
            #expect(response.status == 200)
            #expect(response.header("content-type") == "application/json; charset=utf-8")
            #expect(try c.json(response) == JSONValue.parse(Data(SeedExamples.organization.utf8)))
        }
        if let seed = SeedExamples.seedDocument(prefix: "000") {
            #expect(seed.contains(SeedExamples.organization), "the embedded example is the seed's, verbatim")
        }
    }

    @Test("GET …/tenants/{tenantUid} equals seed 004's example body, field for field")
    func tenant() async throws {
        try await withSimClient { c in
            let token = try await c.login(.vspc, "sp-admin", "Sp-Admin-Pass-4")
            let response = try await c.send(.vspc, .get, "/api/v3/infrastructure/sites/tenants/\(SeedExamples.tenantUID)", token: token.access)
            #expect(response.status == 200)
            #expect(try c.json(response) == JSONValue.parse(Data(SeedExamples.tenant.utf8)))
        }
        if let seed = SeedExamples.seedDocument(prefix: "004") {
            #expect(seed.contains(SeedExamples.tenant), "the embedded example is the seed's, verbatim")
        }
    }
}

@Suite("Simulator: VB365", .serialized)
struct VB365SimulatorTests {
    @Test("each organization's own account reads its own organization; an administrator gets 403")
    func organizationBinding() async throws {
        try await withSimClient { c in
            let other = try await c.login(.vb365, "svc-backup@contoso.local", "Contoso-Org-Pass-2")
            let mine = try c.json(try await c.send(.vb365, .get, "/v5/Organization", token: other.access))
            #expect(mine["name"] == .string("contoso.local"))
            #expect(mine["firstBackuptime"] == .null)

            let admin = try await c.login(.vb365, "TECH\\vbo-admin", "Vbo-Admin-Pass-1")
            let refused = try await c.send(.vb365, .get, "/v5/Organization", token: admin.access)
            #expect(refused.status == 403)
            #expect(try c.json(refused)["message"]?.stringValue?.contains("credentials") == true)

            let all = try await c.send(.vb365, .get, "/v5/Organizations", token: admin.access)
            #expect(all.status == 200)
            guard case .array(let orgs) = try c.json(all) else { Issue.record("not an array"); return }
            #expect(orgs.count == 3)
            #expect(orgs.first?["region"] != nil)
            let one = try await c.send(.vb365, .get, "/v5/Organizations/\(SeedExamples.organizationID)", token: admin.access)
            #expect(try c.json(one)["name"] == .string("abc.onmicrosoft.com"))
            let missing = try await c.send(.vb365, .get, "/v5/Organizations/00000000-0000-0000-0000-000000000000", token: admin.access)
            #expect(missing.status == 404)
            #expect(try c.json(missing)["message"] != nil)
            // An organization account may not list everyone.
            #expect(try await c.send(.vb365, .get, "/v5/Organizations", token: other.access).status == 403)
        }
    }

    @Test("bad credentials get 400 with an OAuth error body")
    func badCredentials() async throws {
        try await withSimClient { c in
            let response = try await c.send(.vb365, .post, "/v5/Token", form: [("grant_type", "password"), ("username", abcUser), ("password", "nope")])
            #expect(response.status == 400)
            let body = try c.json(response)
            #expect(body["error"] == .string("invalid_grant"))
            #expect(body["error_description"] != nil)
            #expect(c.sim.state.counters(.vb365).loginFailures == 1)
            #expect(c.sim.state.counters(.vb365).logins == 0)
        }
    }

    @Test("the token body has every OWIN field")
    func tokenFields() async throws {
        try await withSimClient { c in
            let response = try await c.send(.vb365, .post, "/v5/Token", form: [("grant_type", "password"), ("username", abcUser), ("password", abcPassword)])
            let body = try c.json(response)
            for key in ["access_token", "token_type", "expires_in", "refresh_token", "userName", ".issued", ".expires"] {
                #expect(body[key] != nil, "\(key) missing")
            }
            #expect(body["expires_in"] == .int(3600))
            #expect(body[".expires"]?.stringValue?.hasSuffix(" GMT") == true)
        }
    }

    @Test("a refresh token works once; expired and revoked tokens get 401")
    func tokenLifecycle() async throws {
        try await withSimClient { c in
            let first = try await c.login(.vb365, abcUser, abcPassword)
            let refreshed = try await c.send(.vb365, .post, "/v5/Token", form: [("grant_type", "refresh_token"), ("refresh_token", first.refresh)])
            #expect(refreshed.status == 200)
            let again = try await c.send(.vb365, .post, "/v5/Token", form: [("grant_type", "refresh_token"), ("refresh_token", first.refresh)])
            #expect(again.status == 400)
            #expect(c.sim.state.counters(.vb365).refreshes == 1)
            #expect(c.sim.state.counters(.vb365).refreshFailures == 1)

            let token = try await c.login(.vb365, abcUser, abcPassword)
            #expect(try await c.send(.vb365, .get, "/v5/Organization", token: token.access).status == 200)
            c.sim.state.advanceClock(by: 3601)
            let expired = try await c.send(.vb365, .get, "/v5/Organization", token: token.access)
            #expect(expired.status == 401)
            #expect(try c.json(expired)["message"] != nil)

            let fresh = try await c.login(.vb365, abcUser, abcPassword)
            c.sim.state.revokeTokens(product: .vb365)
            #expect(try await c.send(.vb365, .get, "/v5/Organization", token: fresh.access).status == 401)
            #expect(try await c.send(.vb365, .get, "/v5/Organization").status == 401)
        }
    }
}

@Suite("Simulator: VSPC", .serialized)
struct VSPCSimulatorTests {
    @Test("users/me gives the role; only seed 004's three roles read tenants", arguments: [
        ("portal-admin", "Portal-Admin-Pass-2", "PortalAdministrator", 200),
        ("sp-global-admin", "Sp-Global-Pass-3", "ResellerOwner", 200),
        ("sp-admin", "Sp-Admin-Pass-4", "ResellerAdministrator", 200),
        ("sp-operator", "Sp-Operator-Pass-5", "ResellerOperator", 403),
        ("company-owner", "Company-Owner-Pass-6", "CompanyOwner", 403),
    ])
    func roles(user: String, password: String, role: String, status: Int) async throws {
        try await withSimClient { c in
            let token = try await c.login(.vspc, user, password)
            let me = try c.json(try await c.send(.vspc, .get, "/api/v3/users/me", token: token.access))
            #expect(me["data"]?["role"] == .string(role))
            let one = try await c.send(.vspc, .get, "/api/v3/infrastructure/sites/tenants/\(SeedExamples.tenantUID)", token: token.access)
            #expect(one.status == status)
            let list = try await c.send(.vspc, .get, "/api/v3/infrastructure/sites/tenants", token: token.access)
            #expect(list.status == status)
            if status == 403 {
                let error = try c.json(one)["errors"]
                guard case .array(let errors) = error else { Issue.record("no errors array"); return }
                #expect(errors.first?["type"] == .string("security"))
                #expect(errors.first?["code"] == .int(403))
            }
        }
    }

    @Test("paging follows limit and offset, with meta.pagingInfo")
    func paging() async throws {
        try await withSimClient(generate: 7) { c in
            let token = try await c.login(.vspc, "portal-admin", "Portal-Admin-Pass-2")
            var seen: [String] = []
            var offset = 0
            while true {
                let page = try c.json(try await c.send(.vspc, .get, "/api/v3/infrastructure/sites/tenants?limit=4&offset=\(offset)", token: token.access))
                guard case .array(let items) = page["data"] else { Issue.record("no data"); return }
                #expect(page["meta"]?["pagingInfo"]?["total"] == .int(10))
                #expect(page["meta"]?["pagingInfo"]?["count"] == .int(items.count))
                #expect(page["meta"]?["pagingInfo"]?["offset"] == .int(offset))
                seen += items.compactMap { $0["instanceUid"]?.stringValue }
                offset += items.count
                if items.count < 4 { break }
            }
            #expect(seen.count == 10)
            #expect(Set(seen).count == 10)
            let tooBig = try await c.send(.vspc, .get, "/api/v3/infrastructure/sites/tenants?limit=501", token: token.access)
            #expect(tooBig.status == 400)
            let notUUID = try await c.send(.vspc, .get, "/api/v3/infrastructure/sites/tenants/not-a-uuid", token: token.access)
            #expect(notUUID.status == 400)
            let missing = try await c.send(.vspc, .get, "/api/v3/infrastructure/sites/tenants/00000000-0000-4000-8000-999999999999", token: token.access)
            #expect(missing.status == 404)
        }
    }

    @Test("the 3.6.1 dialect sends PascalCase enums, a throttlingUnit, and no meta on single reads")
    func dialect() async throws {
        try await withSimClient(dialect: .v3_6_1) { c in
            let token = try await c.login(.vspc, "sp-admin", "Sp-Admin-Pass-4")
            let body = try c.json(try await c.send(.vspc, .get, "/api/v3/infrastructure/sites/tenants/\(SeedExamples.tenantUID)", token: token.access))
            #expect(body["data"]?["type"] == .string("General"))
            #expect(body["data"]?["gatewaySelectionType"] == .string("GatewayPool"))
            #expect(body["data"]?["throttlingUnit"] == .string("MbitPerSec"))
            #expect(body["meta"] == nil)
            let vcd = try c.json(try await c.send(.vspc, .get, "/api/v3/infrastructure/sites/tenants/7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d", token: token.access))
            #expect(vcd["data"]?["type"] == .string("VCD"))
        }
    }

    @Test("bad credentials get the documented OAuth error body")
    func badLogin() async throws {
        try await withSimClient { c in
            let response = try await c.send(.vspc, .post, "/api/v3/token", form: [("grant_type", "password"), ("username", "sp-admin"), ("password", "x")])
            #expect(response.status == 400)
            let body = try c.json(response)
            #expect(body["error"] == .string("invalid_grant"))
            #expect(body["error_uri"] == .null)
        }
    }
}

@Suite("Simulator: faults and admin routes", .serialized)
struct FaultTests {
    @Test("server errors come back as 520 with an errors body; VB365's as 500 with a message")
    func serverErrors() async throws {
        try await withSimClient(faults: [.vspc: SimulatorFaults(errorRate: 1), .vb365: SimulatorFaults(errorRate: 1)]) { c in
            let token = try await c.login(.vspc, "sp-admin", "Sp-Admin-Pass-4")
            let response = try await c.send(.vspc, .get, "/api/v3/infrastructure/sites/tenants", token: token.access)
            #expect(response.status == 520)
            guard case .array(let errors) = try c.json(response)["errors"] else { Issue.record("no errors"); return }
            #expect(errors.first?["message"] != nil)
            let vb = try await c.login(.vb365, abcUser, abcPassword)
            let vbResponse = try await c.send(.vb365, .get, "/v5/Organization", token: vb.access)
            #expect(vbResponse.status == 500)
            #expect(try c.json(vbResponse)["message"] != nil)
            #expect(c.sim.state.counters(.vspc).faultsInjected == 1)
        }
    }

    @Test("429 carries retryAfter; 202 carries a Location to an async action; malformed JSON does not parse")
    func otherFaults() async throws {
        try await withSimClient { c in
            let token = try await c.login(.vspc, "sp-admin", "Sp-Admin-Pass-4")
            let path = "/api/v3/infrastructure/sites/tenants/\(SeedExamples.tenantUID)"
            c.sim.state.setFaults(SimulatorFaults(throttleRate: 1, retryAfterSeconds: 7), for: .vspc)
            let throttled = try await c.send(.vspc, .get, path, token: token.access)
            #expect(throttled.status == 429)
            guard case .array(let errors) = try c.json(throttled)["errors"] else { Issue.record("no errors"); return }
            #expect(errors.first?["retryAfter"] == .int(7))

            c.sim.state.setFaults(SimulatorFaults(asyncRate: 1), for: .vspc)
            let queued = try await c.send(.vspc, .get, path, token: token.access)
            #expect(queued.status == 202)
            #expect(queued.header("location")?.contains("/api/v3/asyncActions/") == true)

            c.sim.state.setFaults(SimulatorFaults(malformedRate: 1), for: .vspc)
            let malformed = try await c.send(.vspc, .get, path, token: token.access)
            #expect(malformed.status == 200)
            #expect(throws: (any Error).self) { try c.json(malformed) }
        }
    }

    @Test("faults, counters, revocation and the clock are settable over the admin routes")
    func adminRoutes() async throws {
        try await withSimClient { c in
            let put = try await c.client.perform(
                UpstreamRequest(method: .put, url: c.sim.vspcBaseURL + "/_sim/faults/vspc", body: .json(Array(#"{"errorRate":1}"#.utf8))),
                options: c.sim.trustingOptions()
            )
            #expect(put.status == 200)
            #expect(c.sim.state.faults(.vspc).errorRate == 1)
            let token = try await c.login(.vspc, "sp-admin", "Sp-Admin-Pass-4")
            #expect(try await c.send(.vspc, .get, "/api/v3/infrastructure/sites/tenants", token: token.access).status == 520)
            c.sim.state.setFaults(SimulatorFaults(), for: .vspc)

            #expect(try await c.send(.vspc, .post, "/_sim/revoke?product=vspc").status == 200)
            #expect(try await c.send(.vspc, .get, "/api/v3/users/me", token: token.access).status == 401)
            let counters = try c.json(try await c.send(.vspc, .get, "/_sim/counters"))
            #expect(counters["vspc"]?["logins"] == .int(1))
            #expect(counters["vspc"]?["unauthorized"] == .int(1))

            let again = try await c.login(.vspc, "sp-admin", "Sp-Admin-Pass-4")
            #expect(try await c.send(.vspc, .post, "/_sim/clock/advance?seconds=4000").status == 200)
            #expect(try await c.send(.vspc, .get, "/api/v3/users/me", token: again.access).status == 401)
        }
    }

    @Test("latency delays answers")
    func latency() async throws {
        try await withSimClient(faults: [.vspc: SimulatorFaults(latencyMs: 300)]) { c in
            let started = ContinuousClock.now
            _ = try await c.send(.vspc, .post, "/api/v3/token", form: [("grant_type", "password")])
            #expect(ContinuousClock.now - started >= .milliseconds(300))
        }
    }

    @Test("generated fixtures use seven fractional digits and both enum spellings")
    func generated() throws {
        var fixtures = SimulatorFixtures(vb365Administrators: [], organizations: [], vspcUsers: [], tenants: [])
        fixtures.generate(count: 4)
        #expect(fixtures.organizations.count == 4)
        #expect(fixtures.tenants.count == 4)
        let stamps = fixtures.tenants.compactMap { $0["lastActive"]?.stringValue }
        #expect(stamps.allSatisfy { $0.wholeMatch(of: /.*\.\d{7}Z/) != nil })
        let types = Set(fixtures.tenants.compactMap { $0["type"]?.stringValue })
        #expect(types == ["general", "General"])
    }

    @Test("a generated estate spreads its organizations over VB365 servers: VSPC knows them all, each process serves its shard; companies and tenants counted apart")
    func sharded() throws {
        var fixtures = SimulatorFixtures(vb365Administrators: [], organizations: [], vspcUsers: [], tenants: [])
        fixtures.generate(count: 8, tenants: 12, companies: 4, servers: 4, shard: 1)
        #expect(fixtures.organizations.count == 8, "VSPC's view: every server's")
        #expect(fixtures.vb365Organizations.map(\.id) == ["00000000-0000-4000-8000-000000000002", "00000000-0000-4000-8000-000000000006"])
        #expect(fixtures.tenants.count == 12)
        #expect(fixtures.tenants[4]["assignedForCompany"]?.stringValue == "20000000-0000-4000-8000-000000000001", "tenant 5 → company 1")
        #expect(fixtures.organizations.map { fixtures.server(of: $0) } == [0, 1, 2, 3, 0, 1, 2, 3])
        var single = SimulatorFixtures(vb365Administrators: [], organizations: [], vspcUsers: [], tenants: [])
        single.generate(count: 3)
        #expect(single.vb365Organizations.count == 3 && single.generatedCompanies == 3)
    }
}
