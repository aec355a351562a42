import CurlHTTP
import Foundation
import GatewayTestSupport
import HTTPTransport
import Testing
import VeeamSimulator

let adminUser = "TECH\\vbo-admin"
let adminPassword = "Vbo-Admin-Pass-1"

extension SimClient {
    /// A VB365 password grant in version `api` (`/v5/Token`, else `/vN/token`).
    func vb365Login(_ api: SimulatorVB365API, _ username: String, _ password: String, disableAntiforgery: Bool = true) async throws -> UpstreamResponse {
        var form = [("grant_type", "password"), ("username", username), ("password", password)]
        if disableAntiforgery, api >= .v7 { form.append(("disable_antiforgery_token", "true")) }
        return try await send(.vb365, .post, api == .v5 ? "/v5/Token" : "/\(api.rawValue)/token", form: form)
    }

    func accessToken(_ response: UpstreamResponse) throws -> String {
        try #require(try json(response)["access_token"]?.stringValue)
    }
}

/// Each VB365 version as its spec describes it (the schemas themselves are
/// checked by scripts/validate-simulator.py in CI; these pin the behaviour around them).
@Suite("Simulator: VB365 REST v5–v8 and the VSPC 3.6.1 dialect", .serialized)
struct VersionedSimulatorTests {
    @Test("token route, .issued format and error body per version", arguments: SimulatorVB365API.allCases)
    func tokens(api: SimulatorVB365API) async throws {
        try await withSimClient(vb365API: api) { c in
            let ok = try await c.vb365Login(api, abcUser, abcPassword)
            #expect(ok.status == 200, "\(ok.text)")
            let body = try c.json(ok)
            let issued = try #require(body[".issued"]?.stringValue)
            if api == .v5 {
                #expect(issued.hasSuffix(" GMT"), "\(issued)")  // OWIN: an HTTP-date
            } else {
                #expect(issued.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$"#, options: .regularExpression) != nil, "\(issued)")
            }
            let refused = try await c.vb365Login(api, abcUser, "wrong")
            #expect(refused.status == 400)
            let error = try c.json(refused)
            if api == .v5 {
                #expect(error["error"]?.stringValue == "invalid_grant")
            } else {
                // RESTExceptionInfo: a message, no OAuth members, no nulls.
                #expect(error["message"]?.stringValue != nil)
                #expect(error["error"] == nil)
                #expect(error["errorCode"] == nil)
            }
            // Only the version served is served.
            for other in SimulatorVB365API.allCases where other != api {
                #expect(try await c.vb365Login(other, abcUser, abcPassword).status == 404, "\(other) on a \(api) server")
            }
        }
    }

    @Test("v7+: a login without disable_antiforgery_token needs its cookie to refresh; with the flag it does not", arguments: [SimulatorVB365API.v7, .v8])
    func antiforgery(api: SimulatorVB365API) async throws {
        try await withSimClient(vb365API: api) { c in
            let bound = try await c.vb365Login(api, abcUser, abcPassword, disableAntiforgery: false)
            let cookie = try #require(bound.header("set-cookie")?.split(separator: ";").first.map(String.init))
            let refresh = try #require(try c.json(bound)["refresh_token"]?.stringValue)
            let without = try await c.send(.vb365, .post, "/\(api.rawValue)/token", form: [("grant_type", "refresh_token"), ("refresh_token", refresh)])
            #expect(without.status == 400)
            #expect(without.text.contains("antiforgery"))
            let with = try await c.send(
                .vb365, .post, "/\(api.rawValue)/token", form: [("grant_type", "refresh_token"), ("refresh_token", refresh)],
                headers: [("Cookie", cookie)])
            #expect(with.status == 200, "\(with.text)")

            let free = try await c.vb365Login(api, abcUser, abcPassword)
            #expect(free.header("set-cookie") == nil)
            let freeRefresh = try #require(try c.json(free)["refresh_token"]?.stringValue)
            let plain = try await c.send(.vb365, .post, "/\(api.rawValue)/token", form: [("grant_type", "refresh_token"), ("refresh_token", freeRefresh)])
            #expect(plain.status == 200)
        }
    }

    @Test("Organization: canonical spellings, zoned times, /vN/ links, description from v7; 401 per version", arguments: SimulatorVB365API.allCases)
    func organization(api: SimulatorVB365API) async throws {
        try await withSimClient(vb365API: api) { c in
            let prefix = "/\(api.rawValue)"
            let contoso = try await c.accessToken(c.vb365Login(api, "svc-backup@contoso.local", "Contoso-Org-Pass-2"))
            let body = try c.json(try await c.send(.vb365, .get, prefix + "/Organization", token: contoso))
            #expect(body["type"]?.stringValue == (api == .v5 ? "onPremises" : "OnPremises"))
            #expect((body["description"] != nil) == (api >= .v7))
            #expect(body["_actions"]?["explore"]?["uri"]?.stringValue?.contains(prefix + "/") == true)
            let fabrikam = try await c.accessToken(c.vb365Login(api, "backup@fabrikam-hybrid.onmicrosoft.com", "Fabrikam-Org-Pass-3"))
            let hybrid = try c.json(try await c.send(.vb365, .get, prefix + "/Organization", token: fabrikam))
            #expect(hybrid["firstBackuptime"]?.stringValue == (api == .v5 ? "2017-04-05T08:04:55" : "2017-04-05T08:04:55Z"))

            let anonymous = try await c.send(.vb365, .get, prefix + "/Organization")
            #expect(anonymous.status == 401)
            if api >= .v7 {
                #expect(anonymous.body.isEmpty)
                #expect(anonymous.header("www-authenticate") == "Bearer")
            } else {
                #expect(try c.json(anonymous)["message"]?.stringValue == "Authorization has been denied for this request.")
            }
        }
    }

    @Test("Organizations: v6 needs extendedView, v7 defaults it off, v8 pages with offset echoed and no total")
    func organizations() async throws {
        for api in [SimulatorVB365API.v6, .v7, .v8] {
            try await withSimClient(vb365API: api) { c in
                let admin = try await c.accessToken(c.vb365Login(api, adminUser, adminPassword))
                let plain = try await c.send(.vb365, .get, "/\(api.rawValue)/Organizations", token: admin)
                switch api {
                case .v6:
                    #expect(plain.status == 400)
                    let extended = try c.json(try await c.send(.vb365, .get, "/v6/Organizations?extendedView=true", token: admin))
                    guard case .array(let all) = extended else { Issue.record("v6: not an array"); return }
                    #expect(all.count == 3)
                    #expect(all.allSatisfy { $0["isBackedup"] != nil && $0["_links"]?["self"]?["href"]?.stringValue?.hasPrefix("/v6/") == true })
                    // No null where the spec has no nullable (contoso's officeName), none in region.
                    #expect(all.allSatisfy { $0["officeName"] != .null && $0["region"] != .null })
                case .v7:
                    guard case .array(let all) = try c.json(plain) else { Issue.record("v7: not an array"); return }
                    #expect(all.count == 3)
                    #expect(all.allSatisfy { $0["isBackedup"] == nil })
                default:
                    let first = try c.json(try await c.send(.vb365, .get, "/v8/Organizations?limit=2&offset=0", token: admin))
                    #expect(first["offset"] == .int(0))
                    #expect(first["limit"] == .int(2))
                    #expect(first["totalCount"] == nil)
                    guard case .array(let page1)? = first["results"] else { Issue.record("v8: no results"); return }
                    let second = try c.json(try await c.send(.vb365, .get, "/v8/Organizations?limit=2&offset=2", token: admin))
                    #expect(second["offset"] == .int(2))
                    guard case .array(let page2)? = second["results"] else { Issue.record("v8: no results"); return }
                    #expect(page1.count == 2)
                    #expect(page2.count == 1)
                    #expect(Set((page1 + page2).compactMap { $0["id"]?.stringValue }).count == 3)
                    guard case .array(let defaultPage)? = try c.json(plain)["results"] else { Issue.record("v8: no results"); return }
                    #expect(defaultPage.count == 3)  // limit 30 by default
                    #expect(try await c.send(.vb365, .get, "/v8/Organizations?limit=10001", token: admin).status == 400)
                }
            }
        }
    }

    @Test("ServiceInstance from v6 (bearer), Health on v8 only (anonymous)")
    func discoveryRoutes() async throws {
        for api in SimulatorVB365API.allCases {
            try await withSimClient(vb365API: api) { c in
                let prefix = "/\(api.rawValue)"
                let token = try await c.accessToken(c.vb365Login(api, abcUser, abcPassword))
                let instance = try await c.send(.vb365, .get, prefix + "/ServiceInstance", token: token)
                #expect(instance.status == (api == .v5 ? 404 : 200), "\(api)")
                if api >= .v6 {
                    #expect(try c.json(instance)["version"]?.stringValue?.hasPrefix(String(api.rawValue.dropFirst()) + ".") == true)
                    #expect(try await c.send(.vb365, .get, prefix + "/ServiceInstance").status == 401)
                }
                let health = try await c.send(.vb365, .get, prefix + "/Health")
                #expect(health.status == (api == .v8 ? 200 : 404), "\(api)")
                if api == .v8 { #expect(try c.json(health)["status"]?.stringValue == "Healthy") }
            }
        }
    }

    @Test("VSPC 3.6.1: every tenant carries the required credentials, no null hashedPassword, nothing the model lacks")
    func cloudTenant361() async throws {
        try await withSimClient(dialect: .v3_6_1) { c in
            let token = try await c.login(.vspc, "gateway-svc", "Gateway-Svc-Pass-1").access
            let list = try c.json(try await c.send(.vspc, .get, "/api/v3/infrastructure/sites/tenants", token: token))
            guard case .array(let tenants)? = list["data"] else { Issue.record("no data"); return }
            #expect(tenants.count == 3)
            for tenant in tenants {
                #expect(tenant["credentials"]?["userName"]?.stringValue != nil, "\(tenant)")
                #expect(tenant["hashedPassword"] != .null)
                #expect(tenant["backupServerUid"] == nil)
                #expect(tenant["throttlingUnit"]?.stringValue != nil)
            }
            #expect(tenants.compactMap { $0["type"]?.stringValue }.sorted() == ["General", "General", "VCD"])
            // The seed dialect (older servers) keeps the fixture as written.
        }
        try await withSimClient(dialect: .seed) { c in
            let token = try await c.login(.vspc, "gateway-svc", "Gateway-Svc-Pass-1").access
            let alpha = try c.json(try await c.send(.vspc, .get, "/api/v3/infrastructure/sites/tenants/c386d34c-0ab6-4e13-b30a-67fcb05b83e4", token: token))
            #expect(alpha["data"]?["credentials"] == nil)
            #expect(alpha["data"]?["hashedPassword"] == .null)
        }
    }
}
