import HTTPTransport
import Foundation
import GatewayTestSupport
import Testing
import VeeamSimulator

@Suite("End to end: gateway over HTTP, simulators over TLS", .serialized)
struct ReadPathTests {
    @Test("both seed records come back normalized")
    func seedRecords() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let org = try await gw.json("/v1/tenants/vb365-eu.cbc52c37-df7f-4b03-98f3-036e7d4b3127")
                let orgData = try #require(org["data"] as? [String: Any])
                #expect(orgData["id"] as? String == "vb365-eu.cbc52c37-df7f-4b03-98f3-036e7d4b3127")
                #expect(orgData["kind"] as? String == "organization")
                #expect(orgData["name"] as? String == "abc.onmicrosoft.com")
                #expect(orgData["type"] as? String == "Office365")
                let backup = try #require(orgData["backup"] as? [String: Any])
                #expect(backup["firstBackupAt"] as? String == "2020-05-29T10:29:05.5413083Z")
                #expect(backup["protected"] as? Bool == true)

                let tenant = try await gw.get("/v1/tenants/vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4")
                #expect(tenant.status == 200)
                #expect(tenant.header("content-type") == "application/json")
                #expect(!tenant.text.contains("hashedPassword"))
                let data = try #require((try JSONSerialization.jsonObject(with: Data(tenant.body)) as? [String: Any])?["data"] as? [String: Any])
                #expect(data["kind"] as? String == "cloudTenant")
                #expect(data["name"] as? String == "Alpha")
                #expect(data["type"] as? String == "General")
                #expect(data["enabled"] as? Bool == true)
                #expect((data["details"] as? [String: Any])?["gatewaySelectionType"] as? String == "GatewayPool")
                // Seed 000: the organization was read with its own account's token.
                #expect(sim.state.counters(.vb365).forbidden == 0)
            }
        }
    }

    @Test("the list has both products, every source ok, in a stable order, with filters and paging")
    func list() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let all = try await gw.json("/v1/tenants")
                let data = try #require(all["data"] as? [[String: Any]])
                #expect(data.count == 6)
                #expect(Set(data.compactMap { ($0["source"] as? [String: Any])?["product"] as? String }) == ["vb365", "vspc"])
                let names = data.compactMap { $0["name"] as? String }
                #expect(names == names.sorted { $0.lowercased() < $1.lowercased() })
                let meta = try #require(all["meta"] as? [String: Any])
                #expect(meta["total"] as? Int == 6)
                let sources = try #require(meta["sources"] as? [[String: Any]])
                #expect(sources.map { $0["status"] as? String } == ["ok", "ok"])

                let vspcOnly = try #require(try await gw.json("/v1/tenants?product=vspc")["data"] as? [[String: Any]])
                #expect(vspcOnly.count == 3)
                let q = try #require(try await gw.json("/v1/tenants?q=M%C3%BCLLER")["data"] as? [[String: Any]])
                #expect(q.compactMap { $0["name"] as? String } == ["Fabrikam Müller & Söhne"])
                let page = try await gw.json("/v1/tenants?limit=2&offset=4")
                #expect((page["data"] as? [[String: Any]])?.count == 2)
                #expect((page["meta"] as? [String: Any])?["offset"] as? Int == 4)
                // Every page is a slice of one sorted view (kept while its sources are unchanged).
                var paged: [String] = []
                for offset in stride(from: 0, to: 6, by: 2) {
                    let slice = try #require(try await gw.json("/v1/tenants?limit=2&offset=\(offset)")["data"] as? [[String: Any]])
                    for tenant in slice {
                        let id: String? = tenant["id"] as? String
                        paged.append(id ?? "-")
                    }
                }
                #expect(paged == data.compactMap { $0["id"] as? String })
                // A scoped caller's pages come from its own view, never the administrator's.
                let scoped = try #require(try await gw.json("/v1/tenants?limit=2&offset=0", key: TestKeys.abcApp)["data"] as? [[String: Any]])
                #expect(scoped.compactMap { $0["id"] as? String } == ["vb365-eu.cbc52c37-df7f-4b03-98f3-036e7d4b3127"])
                let oneUpstream = try await gw.json("/v1/tenants?upstream=vb365-eu")
                #expect(((oneUpstream["meta"] as? [String: Any])?["sources"] as? [Any])?.count == 1)
            }
        }
    }

    @Test("a stopped simulator gives a partial list with that source in error (cache off)")
    func partial() async throws {
        try await withSimulator(products: [.vb365]) { vb in
            try await withSimulator(products: [.vspc]) { vspc in
                try await withGateway(vb365: vb, vspc: vspc, cache: "{ maxBytes: 0 }") { gw in
                    let before = try await gw.json("/v1/tenants")
                    #expect((before["data"] as? [Any])?.count == 6)
                    await vspc.stop()
                    let response = try await gw.get("/v1/tenants")
                    #expect(response.status == 200)
                    let after = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
                    let data = try #require(after["data"] as? [[String: Any]])
                    #expect(data.count == 3)
                    #expect(data.allSatisfy { ($0["kind"] as? String) == "organization" })
                    let sources = try #require((after["meta"] as? [String: Any])?["sources"] as? [[String: Any]])
                    let vspcSource = try #require(sources.first { $0["upstream"] as? String == "vspc-main" })
                    #expect(vspcSource["status"] as? String == "error")
                    let problem = try #require(vspcSource["problem"] as? [String: Any])
                    #expect(problem["code"] as? String == "upstream.connect")
                    #expect((problem["detail"] as? String)?.contains("vspc-main") == true)
                    #expect(sources.first { $0["upstream"] as? String == "vb365-eu" }?["status"] as? String == "ok")

                    let single = try await gw.get("/v1/tenants/vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4")
                    #expect(single.status == 502)
                    #expect(single.header("content-type") == "application/problem+json")
                    #expect(single.text.contains("vspc-main"))
                }
            }
        }
    }

    @Test("a slow upstream is cut at its own timeout and does not stall the list")
    func slowUpstream() async throws {
        try await withSimulator(products: [.vb365]) { vb in
            try await withSimulator(products: [.vspc], faults: [.vspc: SimulatorFaults(latencyMs: 5000)]) { vspc in
                try await withGateway(vb365: vb, vspc: vspc, total: "1s") { gw in
                    let started = ContinuousClock.now
                    let list = try await gw.json("/v1/tenants")
                    #expect(ContinuousClock.now - started < .seconds(4), "bounded by the 1 s timeout, not the 5 s latency")
                    #expect((list["data"] as? [Any])?.count == 3)
                    let sources = try #require((list["meta"] as? [String: Any])?["sources"] as? [[String: Any]])
                    let problem = sources.first { $0["upstream"] as? String == "vspc-main" }?["problem"] as? [String: Any]
                    #expect(problem?["code"] as? String == "upstream.timeout")
                    #expect(problem?["status"] as? Int == 504)
                }
            }
        }
    }

    @Test("a wrong upstream password is a 502 problem naming the upstream, and no log line holds a password")
    func wrongPassword() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim, vspcPassword: "wrong.pw") { gw in
                let response = try await gw.get("/v1/tenants/vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4")
                #expect(response.status == 502)
                #expect(response.header("content-type") == "application/problem+json")
                let problem = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
                #expect(problem["code"] as? String == "upstream.login_rejected")
                #expect(problem["upstream"] as? String == "vspc-main")
                #expect(problem["status"] as? Int == 502)
                #expect((problem["requestId"] as? String)?.isEmpty == false)
                #expect(!response.text.contains("Not-The-Password-9"))
                _ = try await gw.get("/v1/tenants")
                #expect(gw.logs.lines(containing: secretValues + ["Not-The-Password-9"]).isEmpty)
                #expect(!gw.logs.all.isEmpty)
            }
        }
    }

    @Test("a malformed id is a 400 before any upstream call; unknown routes are 404, other methods 405, all problem+json")
    func badRequests() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                for path in ["/v1/tenants/not-an-id", "/v1/tenants/vspc-main.c386d34c%2F..%2F", "/v1/tenants/VSPC.c386d34c-0ab6-4e13-b30a-67fcb05b83e4",
                    "/v1/tenants?limit=0", "/v1/tenants?limit=501", "/v1/tenants?offset=-1", "/v1/tenants?product=nas", "/v1/tenants?q=%0D%0A"]
                {
                    let response = try await gw.get(path)
                    #expect(response.status == 400, "\(path)")
                    #expect(response.header("content-type") == "application/problem+json")
                }
                #expect(sim.state.counters(.vb365).requests.isEmpty)
                #expect(sim.state.counters(.vspc).requests.isEmpty)

                let missing = try await gw.get("/v2/anything")
                #expect(missing.status == 404)
                #expect(missing.header("content-type") == "application/problem+json")
                let unknownUpstream = try await gw.get("/v1/tenants/nowhere.c386d34c-0ab6-4e13-b30a-67fcb05b83e4")
                #expect(unknownUpstream.status == 404)
                let post = try await gw.send(.post, "/v1/tenants")
                #expect(post.status == 405)
                #expect(post.header("allow") == "GET")
                #expect(post.header("content-type") == "application/problem+json")
                for method in ["TRACE", "OPTIONS", "QUERY", "PATCH"] {
                    let odd = try await gw.client.perform(
                        UpstreamRequest(method: HTTPMethod(rawValue: method), url: gw.baseURL + "/v1/tenants/vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4",
                            headers: [("X-API-Key", TestKeys.portalAdmin)]),
                        options: TransferOptions())
                    #expect(odd.status == 405, "\(method)")
                    #expect(odd.header("allow") == "GET")
                }
            }
        }
    }

    @Test("X-Request-Id is taken from the caller or generated, echoed, and sent upstream")
    func requestID() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim, cache: "{ maxBytes: 0 }") { gw in
                let mine = try await gw.get("/healthz", headers: [("X-Request-Id", "caller-123")])
                #expect(mine.header("x-request-id") == "caller-123")
                let generated = try await gw.get("/healthz", headers: [("X-Request-Id", "bad id with spaces")])
                #expect(generated.header("x-request-id")?.count == 36)
                // Sent upstream: VB365 gets it as is; VSPC (an idempotency key there) only when it is a UUID.
                let uuid = "0b6e1c1e-6a7d-4c1f-9a0e-3f4b5c6d7e8f"
                _ = try await gw.get("/v1/tenants", headers: [("X-Request-Id", uuid)])
                _ = try await gw.get("/v1/tenants", headers: [("X-Request-Id", "caller-456")])
                #expect(sim.state.receivedRequestIDs(.vb365).contains(uuid))
                #expect(sim.state.receivedRequestIDs(.vspc).contains(uuid))
                #expect(sim.state.receivedRequestIDs(.vb365).contains("caller-456"))
                #expect(!sim.state.receivedRequestIDs(.vspc).contains("caller-456"))
                let problem = try await gw.get("/v1/tenants/x", headers: [("X-Request-Id", "trace-42")])
                #expect(problem.text.contains("\"requestId\":\"trace-42\""))
                #expect(gw.logs.all.contains { $0.contains("trace-42") && $0.contains("status=400") })
            }
        }
    }

    @Test("/v1/upstreams shows name, product, base URL, reachability and token state; no secrets")
    func upstreams() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                _ = try await gw.get("/v1/tenants")
                let response = try await gw.get("/v1/upstreams")
                #expect(response.status == 200)
                let data = try #require((try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])?["data"] as? [[String: Any]])
                #expect(data.map { $0["name"] as? String } == ["vb365-eu", "vspc-main"])
                #expect(data.allSatisfy { $0["tokenState"] as? String == "valid" && $0["reachable"] as? Bool == true })
                for secret in secretValues + ["gateway-svc.pw", "password"] { #expect(!response.text.contains(secret)) }
            }
        }
    }
}
