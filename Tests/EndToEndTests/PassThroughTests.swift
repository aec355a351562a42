import Foundation
import GatewayTestSupport
import HTTPTransport
import Testing
import VeeamSimulator
import GatewayCore

/// Pass-through (`/v1/tenants/{id}/api/…`, `/v1/upstreams/{name}/api/…`) against the simulator
/// over TLS: the policy, the right session per form, redaction, paths, caching.
@Suite("End to end: pass-through of other Veeam reads", .serialized)
struct PassThroughTests {
    static let abc = "vb365-eu.cbc52c37-df7f-4b03-98f3-036e7d4b3127"
    static let contoso = "vb365-eu.5d0f3b52-7b58-4c3e-9d0a-3d2b1f6a9e11"
    /// The simulator's VB365 administrator as vb365-eu's pass-through account (its password from
    /// the environment: the harness's secret files are its own).
    static let adminAccount = "    passThrough: { account: { username: 'TECH\\vbo-admin', password: { env: VGW_TEST_VBO_ADMIN } } }\n"
    /// An organization's job, as the simulator numbers them (VB365Estate: the first 8 hex digits replaced).
    static func job(_ number: Int, of tenant: String) -> String {
        let id = tenant.split(separator: ".")[1]
        return "0b00000\(number)" + id.dropFirst(8)
    }

    static func problemCode(_ response: UpstreamResponse) -> String? {
        (try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])?["code"] as? String
    }

    static func port(_ gateway: RunningGateway) throws -> Int {
        try #require(Int(gateway.baseURL.split(separator: ":").last.map(String.init) ?? ""))
    }

    @Test("VSPC through the upstream form: seed 004's roles read it, others are told the roles, a path outside the policy is 403 naming it; none of the refusals reach VSPC")
    func vspcPolicy() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let path = "/v1/upstreams/vspc-main/api/infrastructure/sites/tenants?limit=10"
                for key in [TestKeys.portalAdmin, TestKeys.spGlobalAdmin, TestKeys.spAdmin] {
                    let answer = try await gw.get(path, key: key)
                    #expect(answer.status == 200, "\(answer.text)")
                    #expect(answer.header("content-type") == "application/json")
                }
                sim.state.resetCounters()
                for key in [TestKeys.spOperator, TestKeys.companyOwner, TestKeys.readOnly, TestKeys.abcApp] {
                    let refused = try await gw.get(path, key: key)
                    #expect(refused.status == 403)
                    #expect(Self.problemCode(refused) == "auth.forbidden")
                    #expect(refused.text.contains("PortalAdministrator"))
                }
                let outside = try await gw.get("/v1/upstreams/vspc-main/api/users/me")
                #expect(outside.status == 403)
                #expect(Self.problemCode(outside) == "passthrough.not_allowed")
                #expect(outside.text.contains("passThrough.routes"))
                let token = try await gw.get("/v1/upstreams/vspc-main/api/token")
                #expect(token.status == 403)
                let unknown = try await gw.get("/v1/upstreams/nowhere/api/organizations/companies")
                #expect(unknown.status == 404)
                let anonymous = try await gw.get(path, key: nil)
                #expect(anonymous.status == 401)
                #expect(sim.state.counters(.vspc).resourceRequests == 0, "refused requests cost VSPC nothing")
                #expect(sim.state.counters(.vspc).logins == 0)
            }
        }
    }

    @Test("secret members never pass: hashedPassword and credentials are removed from VSPC's tenants; the answer's headers are the gateway's own")
    func redaction() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                // Bravo's record, as the simulator serves it, carries hashedPassword and
                // credentials with a password (config/simulator/vspc.json): it passes, they do not.
                let tenants = try await gw.get("/v1/upstreams/vspc-main/api/infrastructure/sites/tenants")
                #expect(tenants.status == 200)
                let text = tenants.text
                #expect(text.contains("0f8e7d6c-5b4a-4392-8170-6e5d4c3b2a19"))
                #expect(text.contains("Cloud Connect Site 1"))
                for secret in ["hashedPassword", "credentials", "\"password\""] + secretValues {
                    #expect(!text.contains(secret), "\(secret) passed through")
                }
                // A company's owner credentials (Bravo Corp's carries a password in the simulator).
                let companies = try await gw.get("/v1/upstreams/vspc-main/api/organizations/companies")
                #expect(companies.status == 200)
                #expect(companies.text.contains("Bravo Corp"))
                #expect(!companies.text.contains("Bravo-Company-Owner-Pass-8"), "ownerCredentials.password is removed, its userName kept")
                #expect(companies.header("set-cookie") == nil, "the simulator's Set-Cookie stays upstream")
                #expect(tenants.header("set-cookie") == nil)
                #expect(tenants.header("authorization") == nil)
                let log = gw.logs.all.joined(separator: "\n")
                for secret in secretValues { #expect(!log.contains(secret)) }
            }
        }
    }

    @Test("hostile paths are 400 before any upstream call: traversal, encoded slashes and dots, encoded queries, absolute URLs")
    func hostilePaths() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let port = try Self.port(gw)
                sim.state.resetCounters()
                let paths = [
                    "/v1/upstreams/vspc-main/api/organizations/companies/../../token",
                    "/v1/upstreams/vspc-main/api/organizations/companies%2F..%2F..%2Ftoken",
                    "/v1/upstreams/vspc-main/api/organizations/%2e%2e/users/me",
                    "/v1/upstreams/vspc-main/api/organizations/companies%3Flimit=1",
                    "/v1/upstreams/vspc-main/api//evil.example/organizations/companies",
                    "/v1/upstreams/vspc-main/api/organizations/companies/./x",
                    "/v1/tenants/\(Self.abc)/api/Jobs/..",
                    "/v1/tenants/\(Self.abc)/api/Jobs%2F..%2F..%2FOrganizations",
                    "/v1/upstreams/vspc-main/api/organizations/companies?limit=1&x=%0d%0aHost:%20evil",
                ]
                for path in paths {
                    let request = "GET \(path) HTTP/1.1\r\nHost: x\r\nX-API-Key: \(TestKeys.portalAdmin)\r\n\r\n"
                    let answers = try await RawConnection.exchange(port: port, chunks: [Array(request.utf8)], responses: 1)
                    #expect(answers.first?.status == 400, "\(path): \(answers.first.map { String(decoding: $0.body, as: UTF8.self) } ?? "no answer")")
                    #expect(answers.first.map { String(decoding: $0.body, as: UTF8.self).contains("passthrough.invalid_path") } == true, "\(path)")
                }
                #expect(sim.state.counters(.vspc).resourceRequests == 0)
                #expect(sim.state.counters(.vb365).resourceRequests == 0)
            }
        }
    }

    @Test("cached like a tenant: a HIT the second time, 304 for its ETag, one upstream read; an administrator's no-cache reads again; a purge of the upstream empties it")
    func caching() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let path = "/v1/upstreams/vspc-main/api/infrastructure/sites/tenants?limit=2&offset=1"
                let first = try await gw.get(path)
                #expect(first.status == 200)
                #expect(first.header("x-cache") == "MISS")
                let reads = sim.state.counters(.vspc).resourceRequests
                let second = try await gw.get(path)
                #expect(second.header("x-cache") == "HIT")
                #expect(second.body == first.body)
                let etag = try #require(first.header("etag"))
                let conditional = try await gw.get(path, headers: [("If-None-Match", etag)])
                #expect(conditional.status == 304)
                #expect(sim.state.counters(.vspc).resourceRequests == reads, "hits cost VSPC nothing")
                // Another query is another entry.
                let other = try await gw.get("/v1/upstreams/vspc-main/api/infrastructure/sites/tenants?limit=1")
                #expect(other.header("x-cache") == "MISS")
                let bypass = try await gw.get(path, headers: [("Cache-Control", "no-cache")])
                #expect(bypass.header("x-cache") == "BYPASS")
                let purged = try await gw.send(.delete, "/v1/cache?upstream=vspc-main")
                #expect(purged.status == 200)
                #expect(try await gw.get(path).header("x-cache") == "MISS")
                // Counted under the route template, never the path (caller input).
                let metrics = try await gw.get("/metrics", key: nil).text
                #expect(metrics.contains(#"veeam_gateway_http_requests_total{route="/v1/upstreams/{name}/api/{path}",method="GET",status="200"}"#), "\(metrics.prefix(400))")
                #expect(!metrics.contains("infrastructure/sites/tenants"))
            }
        }
    }

    @Test("pages=all walks VSPC's pages of 500 to the end and answers one array with the total, cached as one entry")
    func allPages() async throws {
        try await withSimulator(generate: 1200) { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                sim.state.resetCounters()
                let all = try await gw.get("/v1/upstreams/vspc-main/api/infrastructure/sites/tenants?pages=all&limit=7")
                #expect(all.status == 200, "\(all.text.prefix(300))")
                let document = try #require(try JSONSerialization.jsonObject(with: Data(all.body)) as? [String: Any])
                let data = try #require(document["data"] as? [[String: Any]])
                #expect(data.count == 1203)
                #expect(Set(data.compactMap { $0["instanceUid"] as? String }).count == 1203, "no page twice, none missing")
                let meta = try #require(document["meta"] as? [String: Any])
                #expect(meta["total"] as? Int == 1203)
                #expect(meta["pages"] as? Int == 3)
                #expect(sim.state.counters(.vspc).resourceRequests == 3)
                #expect(!all.text.contains("hashedPassword") && !all.text.contains("credentials"))
                #expect(try await gw.get("/v1/upstreams/vspc-main/api/infrastructure/sites/tenants?pages=all&limit=7").header("x-cache") == "HIT")
                #expect(sim.state.counters(.vspc).resourceRequests == 3)
            }
        }
    }

    @Test("the tenant form reads with the organization's own session: its jobs only, for its scoped caller too; another organization's is hidden; an upstream cookie never passes")
    func organizationsOwnSession() async throws {
        try await withSimulator(vb365API: .v8) { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let abcJobs = try await gw.get("/v1/tenants/\(Self.abc)/api/Jobs?limit=50")
                #expect(abcJobs.status == 200, "\(abcJobs.text)")
                #expect(abcJobs.text.contains(Self.job(1, of: Self.abc)) && abcJobs.text.contains(Self.job(2, of: Self.abc)))
                #expect(!abcJobs.text.contains(Self.job(1, of: Self.contoso)), "VB365 confined the organization's own session")
                #expect(abcJobs.header("set-cookie") == nil, "the simulator's Set-Cookie stays upstream")
                #expect(sim.state.counters(.vb365).forbidden == 0, "read with its own account (seed 000), never an administrator's")
                // The organization's scoped caller reads its own, and not another's (hidden: 404).
                let scoped = try await gw.get("/v1/tenants/\(Self.abc)/api/Jobs/\(Self.job(2, of: Self.abc))", key: TestKeys.abcApp)
                #expect(scoped.status == 200)
                let other = try await gw.get("/v1/tenants/\(Self.contoso)/api/Jobs", key: TestKeys.abcApp)
                #expect(other.status == 404)
                #expect(try await gw.get("/v1/tenants/\(Self.abc)/api/Jobs", key: TestKeys.spOperator).status == 403)
                // Another organization's object asked through abc's session: VB365 refuses it, and
                // the problem names the upstream.
                let crossed = try await gw.get("/v1/tenants/\(Self.abc)/api/Organizations/\(Self.contoso.split(separator: ".")[1])/Users")
                #expect(crossed.status == 502)
                #expect(Self.problemCode(crossed) == "upstream.forbidden")
                #expect(crossed.text.contains("vb365-eu"))
                let own = try await gw.get("/v1/tenants/\(Self.abc)/api/Organizations/\(Self.abc.split(separator: ".")[1])/Users")
                #expect(own.status == 200)
                // Purging the organization takes its pass-through entries too.
                #expect(try await gw.get("/v1/tenants/\(Self.abc)/api/Jobs?limit=50").header("x-cache") == "HIT")
                #expect(try await gw.send(.delete, "/v1/cache?tenant=\(Self.abc)").status == 200)
                #expect(try await gw.get("/v1/tenants/\(Self.abc)/api/Jobs?limit=50").header("x-cache") == "MISS")
            }
        }
    }

    @Test("VB365's upstream form reads with passThrough.account: every organization's jobs, for seed 004's roles")
    func vb365AdministrativeAccount() async throws {
        setenv("VGW_TEST_VBO_ADMIN", "Vbo-Admin-Pass-1", 1)
        try await withSimulator(vb365API: .v8) { sim in
            try await withGateway(vb365: sim, vspc: sim, vb365Extra: Self.adminAccount) { gw in
                let jobs = try await gw.get("/v1/upstreams/vb365-eu/api/Jobs?limit=100")
                #expect(jobs.status == 200, "\(jobs.text)")
                for tenant in [Self.abc, Self.contoso] { #expect(jobs.text.contains(Self.job(1, of: tenant))) }
                #expect(try await gw.get("/v1/upstreams/vb365-eu/api/Jobs", key: TestKeys.abcApp).status == 403)
                let all = try await gw.get("/v1/upstreams/vb365-eu/api/Jobs?pages=all")
                let data = try #require((try JSONSerialization.jsonObject(with: Data(all.body)) as? [String: Any])?["data"] as? [Any])
                #expect(data.count == 6, "two jobs for each of the three organizations")
                #expect(!gw.logs.all.joined().contains("Vbo-Admin-Pass-1"))
            }
        }
    }

    @Test("a write an operator allows is sent once with the organization's session, answered with the upstream's status, and audited; the shipped table and other roles are refused before VB365; a 401 is not retried")
    func writes() async throws {
        let route = "passThrough: { routes: [ { product: vb365, form: tenant, path: /Jobs/*/start, methods: [POST], roles: [ServiceProviderAdministrator] } ] }"
        try await withSimulator(vb365API: .v8) { sim in
            try await withGateway(vb365: sim, vspc: sim, extra: route) { gw in
                let job = Self.job(1, of: Self.abc)
                let path = "/v1/tenants/\(Self.abc)/api/Jobs/\(job)/start"
                let startRoute = "POST /v8/Jobs/{jobId}/start"
                func post(_ path: String, key: String, body: String? = "{}", requestID: String = UUID().uuidString.lowercased()) async throws -> UpstreamResponse {
                    try await gw.client.perform(
                        UpstreamRequest(
                            method: .post, url: gw.baseURL + path, headers: [("X-API-Key", key), ("X-Request-Id", requestID)],
                            body: body.map { .json(Array($0.utf8)) }),
                        options: gw.callerOptions)
                }
                let started = try await post(path, key: TestKeys.spAdmin, requestID: "write-check-1")
                #expect(started.status == 200, "\(started.text)")
                #expect(started.header("cache-control") == "no-store")
                #expect(started.text.contains("5e000001"), "the job's session")
                #expect(sim.state.counters(.vb365).requests[startRoute] == 1)
                #expect(gw.logs.all.contains { $0.contains("audit: pass-through write") && $0.contains("sp-admin") && $0.contains("200") && $0.contains("write-check-1") })
                // A caller without the route's roles, and the shipped table's read-only routes: refused, VB365 never asked.
                #expect(try await post(path, key: TestKeys.portalAdmin).status == 403)
                let readOnly = try await post("/v1/upstreams/vspc-main/api/alarms/active", key: TestKeys.portalAdmin)
                #expect(readOnly.status == 403)
                #expect(Self.problemCode(readOnly) == "passthrough.not_allowed")
                #expect(try await post(path, key: TestKeys.spAdmin, body: "not json").status == 400)
                #expect(try await post(path, key: TestKeys.spAdmin, body: String(repeating: " ", count: (1 << 20) + 1) + "{}").status == 413)
                #expect(sim.state.counters(.vb365).requests[startRoute] == 1)
                // Every session revoked: the write meets a 401 and is not sent again.
                sim.state.revokeTokens(product: .vb365)
                let refused = try await post(path, key: TestKeys.spAdmin, requestID: "write-check-2")
                #expect(refused.status == 502)
                #expect(sim.state.counters(.vb365).requests[startRoute] == 2, "sent once, never retried")
                #expect(gw.logs.all.contains { $0.contains("audit: pass-through write") && $0.contains("write-check-2") && $0.contains("401") })
                // The next request logs in again.
                #expect(try await post(path, key: TestKeys.spAdmin).status == 200)
            }
        }
    }

    @Test(
        "every path of the shipped table answers with only a gateway key: VB365's through the organization's own session in every version, VSPC's through the gateway's account",
        arguments: [(SimulatorVB365API.v5, SimulatorDialect.seed), (.v6, .v3_6_1), (.v7, .seed), (.v8, .v3_6_1)])
    func everyDefaultPath(version: SimulatorVB365API, dialect: SimulatorDialect) async throws {
        try await withSimulator(dialect: dialect, vb365API: version) { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let organization = String(Self.abc.split(separator: ".")[1])
                var seen = 0
                for route in PassThroughPolicy.defaultRoutes {
                    // The pattern as a path: `*` within it is the organization, a final `*` nothing.
                    var path = route.pattern
                    if path.hasSuffix("*") { path.removeLast() }
                    path = path.replacingOccurrences(of: "*", with: organization)
                    let url: String
                    switch (route.form, route.applies) {
                    case (.tenant, .product(.vb365)): url = "/v1/tenants/\(Self.abc)/api" + path
                    case (.upstream, .product(.vspc)): url = "/v1/upstreams/vspc-main/api" + path
                    default: continue  // VB365's upstream form needs passThrough.account (vb365AdministrativeAccount)
                    }
                    let answer = try await gw.get(url)
                    #expect(answer.status == 200, "\(version) \(url): \(answer.status) \(answer.text.prefix(200))")
                    #expect((try? JSONSerialization.jsonObject(with: Data(answer.body))) != nil, "\(url): JSON")
                    seen += 1
                }
                #expect(seen == 18, "12 VB365 paths and 6 VSPC paths")
            }
        }
    }

    @Test("VSPC's 202 and Location are followed to the action's result: every read queued, every answer the read's own")
    func asyncActions() async throws {
        try await withSimulator(faults: [.vspc: SimulatorFaults(asyncRate: 1)]) { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let companies = try await gw.get("/v1/upstreams/vspc-main/api/organizations/companies")
                #expect(companies.status == 200, "\(companies.text)")
                #expect(companies.text.contains("Bravo Corp") && !companies.text.contains("Bravo-Company-Owner-Pass-8"))
                let counters = sim.state.counters(.vspc)
                #expect(counters.requests["GET /api/v3/asyncActions/{id}"] ?? 0 >= 2, "polled while running, then done: \(counters.requests)")
                #expect(counters.requests["GET /api/v3/asyncActions/{id}/result"] == 1)
                // Every page of pages=all is queued too.
                let all = try await gw.get("/v1/upstreams/vspc-main/api/infrastructure/sites/tenants?pages=all")
                #expect(all.status == 200)
                #expect(((try JSONSerialization.jsonObject(with: Data(all.body)) as? [String: Any])?["data"] as? [Any])?.count == 3)
            }
        }
    }

    @Test("only an async action's id is taken from Location, and only from VSPC's own path shape")
    func asyncActionLocation() {
        #expect(AsyncActions.actionID("https://vspc:1280/api/v3/asyncActions/0F8C1F1E-6A38-4B8E-9A3B-5A1D5F0C1A01") == "0f8c1f1e-6a38-4b8e-9a3b-5a1d5f0c1a01")
        #expect(AsyncActions.actionID("/api/v3/asyncActions/0f8c1f1e-6a38-4b8e-9a3b-5a1d5f0c1a01?x=1") == "0f8c1f1e-6a38-4b8e-9a3b-5a1d5f0c1a01")
        for hostile in [
            "https://evil/api/v3/asyncActions/../token", "https://evil/api/v3/asyncActions/not-a-uuid", "https://evil/api/v3/users/0f8c1f1e-6a38-4b8e-9a3b-5a1d5f0c1a01",
            "https://evil/asyncActions/0f8c1f1e-6a38-4b8e-9a3b-5a1d5f0c1a01", "", "https://evil/api/v3/asyncActions/",
        ] {
            #expect(AsyncActions.actionID(hostile) == nil, "\(hostile)")
        }
    }

    @Test("a write's status is the upstream's: v7 starts a job with 204 and no body")
    func writeNoContent() async throws {
        let route = "passThrough: { routes: [ { product: vb365, form: tenant, path: /Jobs/*/start, methods: [POST], roles: [ServiceProviderAdministrator] } ] }"
        try await withSimulator(vb365API: .v7) { sim in
            try await withGateway(vb365: sim, vspc: sim, extra: route) { gw in
                let started = try await gw.client.perform(
                    UpstreamRequest(
                        method: .post, url: gw.baseURL + "/v1/tenants/\(Self.abc)/api/Jobs/\(Self.job(2, of: Self.abc))/start",
                        headers: [("X-API-Key", TestKeys.spAdmin)], body: .json(Array(#"{"full":false}"#.utf8))),
                    options: gw.callerOptions)
                #expect(started.status == 204)
                #expect(started.body.isEmpty)
                #expect(sim.state.counters(.vb365).requests["POST /v7/Jobs/{jobId}/start"] == 1)
            }
        }
    }

    @Test("single flight: 40 callers at once for one cold pass-through path, 300 ms upstream latency: one VSPC read, one answer for all")
    func singleFlight() async throws {
        try await withSimulator(faults: [.vspc: SimulatorFaults(latencyMs: 300)]) { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let path = "/v1/upstreams/vspc-main/api/alarms/active"
                let bodies = try await withThrowingTaskGroup(of: [UInt8].self) { group in
                    for _ in 0..<40 { group.addTask { try await gw.get(path).body } }
                    var all: [[UInt8]] = []
                    for try await body in group { all.append(body) }
                    return all
                }
                #expect(Set(bodies).count == 1 && bodies.count == 40)
                #expect(sim.state.counters(.vspc).requests["GET /api/v3/alarms/active"] == 1)
            }
        }
    }

    @Test("VSPC's 429 is the upstream's quiet period for pass-through too: 503 with Retry-After, and nothing more is sent until it ends")
    func throttled() async throws {
        try await withSimulator(faults: [.vspc: SimulatorFaults(throttleRate: 1, retryAfterSeconds: 30)]) { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let first = try await gw.get("/v1/upstreams/vspc-main/api/alarms/active")
                #expect(first.status == 503)
                #expect(first.header("retry-after") != nil)
                #expect(Self.problemCode(first) == "upstream.throttled")
                let sent = sim.state.counters(.vspc).resourceRequests
                let second = try await gw.get("/v1/upstreams/vspc-main/api/organizations/companies")
                #expect(second.status == 503)
                #expect(sim.state.counters(.vspc).resourceRequests == sent, "held back during the quiet period")
                // /metrics shows the quiet period per upstream (deploy/prometheus/alerts.yaml alerts on it).
                let lines = try await gw.get("/metrics", key: nil).text.split(separator: "\n")
                func value(_ series: String) -> Double? {
                    lines.first { $0.hasPrefix(series + " ") }.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }
                }
                #expect((value(#"veeam_gateway_upstream_throttled_total{upstream="vspc-main"}"#) ?? 0) >= 1, "\(lines.filter { $0.contains("throttled") })")
                #expect((value(#"veeam_gateway_upstream_quiet_period_seconds{upstream="vspc-main"}"#) ?? 0) > 0)
                #expect(value(#"veeam_gateway_upstream_throttled_total{upstream="vb365-eu"}"#) == 0)
                #expect(value(#"veeam_gateway_upstream_quiet_period_seconds{upstream="vb365-eu"}"#) == 0)
            }
        }
    }

    @Test("an upstream 404 is passthrough.not_found naming the upstream; a cloud tenant's id is refused in the tenant form")
    func notFound() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let missing = try await gw.get("/v1/upstreams/vspc-main/api/infrastructure/sites/tenants/0f8c1f1e-6a38-4b8e-9a3b-5a1d5f0c1a01")
                #expect(missing.status == 404)
                #expect(Self.problemCode(missing) == "passthrough.not_found")
                #expect(missing.text.contains("vspc-main"))
                let tenantForm = try await gw.get("/v1/tenants/vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4/api/Jobs")
                #expect(tenantForm.status == 403)
                #expect(Self.problemCode(tenantForm) == "passthrough.not_allowed")
                let badID = try await gw.get("/v1/tenants/not-an-id/api/Jobs")
                #expect(badID.status == 400)
                // VB365's upstream form needs passThrough.account: without one it is refused.
                let noAccount = try await gw.get("/v1/upstreams/vb365-eu/api/Jobs")
                #expect(noAccount.status == 403)
                #expect(Self.problemCode(noAccount) == "passthrough.not_allowed")
            }
        }
    }
}
