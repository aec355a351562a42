import Foundation
import GatewayTestSupport
import HTTPTransport
import Testing
import VeeamSimulator

/// `GET /v1/status`, the session that only it accepts, and the page's headers.
@Suite("End to end: the operator's status", .serialized)
struct StatusTests {
    func status(_ gw: RunningGateway, headers: [(name: String, value: String)] = [], key: String? = TestKeys.portalAdmin) async throws -> (UpstreamResponse, [String: Any]) {
        let response = try await gw.get("/v1/status", key: key, headers: headers)
        let body = (try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]) ?? [:]
        return (response, body)
    }

    func row(_ body: [String: Any], _ name: String) -> [String: Any]? {
        (body["upstreams"] as? [[String: Any]])?.first { $0["name"] as? String == name }
    }

    @Test("both products ok with their accounts, rates, cache and problems; no secret; administrators only")
    func report() async throws {
        try await withSimulator(vb365API: .v8) { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                #expect(try await gw.get("/v1/tenants").status == 200)
                #expect(try await gw.get("/v1/tenants").status == 200)  // a hit
                #expect(try await gw.get(cloudTenantPath, key: TestKeys.companyOwner).status == 403)  // a problem
                let (response, body) = try await status(gw)
                #expect(response.status == 200, "\(response.text)")
                #expect(response.header("cache-control") == "no-store")
                #expect(response.header("x-content-type-options") == "nosniff" && response.header("x-frame-options") == "DENY")
                #expect(response.header("content-security-policy")?.contains("default-src 'none'") == true)
                #expect(body["mark"] as? String == "ok")
                let vb = try #require(row(body, "vb365-eu"))
                #expect(vb["mark"] as? String == "ok")
                #expect(vb["apiVersion"] as? String == "v8")
                let accounts = try #require(vb["accounts"] as? [[String: Any]])
                #expect(accounts.count == 3)
                #expect(accounts.allSatisfy { $0["state"] as? String == "valid" && ($0["expiresInSeconds"] as? Int ?? 0) > 3000 && $0["lastLogin"] is String })
                // The version probe (v8 answers the first), three logins, three reads, and the
                // readiness probe's one anonymous request (the tokens were cached).
                #expect(((vb["calls"] as? [String: Any])?["requests"] as? [String: Any])?["1m"] as? Int == 8)
                let vspc = try #require(row(body, "vspc-main"))
                #expect(vspc["mark"] as? String == "ok")
                #expect((vspc["accounts"] as? [[String: Any]])?.first?["username"] as? String == "gateway-svc")
                let gateway = try #require(body["gateway"] as? [String: Any])
                let routes = try #require(gateway["routes"] as? [[String: Any]])
                #expect(routes.contains { $0["route"] as? String == "GET /v1/tenants" })
                let cache = try #require(body["cache"] as? [String: Any])
                #expect((cache["hitRatio"] as? [String: Any])?["1m"] as? Double == 0.5)
                let problems = try #require(body["problems"] as? [[String: Any]])
                let forbidden = try #require(problems.first { $0["code"] as? String == "auth.forbidden" })
                #expect(forbidden["route"] as? String == "GET /v1/tenants/{id}")
                #expect(forbidden["tenant"] as? String == "vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4")
                #expect((forbidden["requestId"] as? String)?.isEmpty == false)
                for secret in secretValues + sim.state.issuedTokens + [TestKeys.portalAdmin, TestKeys.companyOwner] {
                    #expect(!response.text.contains(secret), "a secret in /v1/status")
                }
                #expect(try await status(gw, key: TestKeys.spAdmin).0.status == 403)
                #expect(try await status(gw, key: nil).0.status == 401)
            }
        }
    }

    @Test("a session cookie for an administrator's key: only /v1/status accepts it; HttpOnly, SameSite=Strict, Path=/v1/status")
    func session() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let opened = try await gw.send(.post, "/v1/auth/session")
                #expect(opened.status == 200, "\(opened.text)")
                let cookies = opened.headers.filter { $0.name.lowercased() == "set-cookie" }.map(\.value)
                let session = try #require(cookies.first { $0.hasPrefix("vgw_status=") })
                for attribute in ["Path=/v1/status", "HttpOnly", "SameSite=Strict", "Max-Age=900"] { #expect(session.contains(attribute), "\(session)") }
                #expect(!session.contains("Secure"), "plain HTTP: no Secure flag (secureSession tests HTTPS)")
                #expect(cookies.contains { $0.hasPrefix("vgw_status_open=1;") && !$0.contains("HttpOnly") })
                let cookie = try #require(session.split(separator: ";").first.map(String.init))
                let (withCookie, body) = try await status(gw, headers: [("Cookie", cookie)], key: nil)
                #expect(withCookie.status == 200)
                #expect(body["mark"] as? String == "ok")
                #expect(try await gw.get("/v1/tenants", key: nil, headers: [("Cookie", cookie)]).status == 401, "no other route accepts it")
                #expect(try await status(gw, headers: [("Cookie", "vgw_status=forged-session-token-0123456789")], key: nil).0.status == 401)
                #expect(try await gw.send(.post, "/v1/auth/session", key: TestKeys.spAdmin).status == 403)
                #expect(try await gw.send(.post, "/v1/auth/session", key: nil).status == 401)
                // Neither the key nor the session token was logged.
                let token = String(cookie.dropFirst("vgw_status=".count))
                #expect(token.count > 20)
                #expect(gw.logs.lines(containing: [TestKeys.portalAdmin, token]).isEmpty)
                // A key in Authorization (or a gateway token) does not open a session: X-API-Key only.
                let viaBearer = try await gw.get("/v1/auth/session", key: nil, headers: [("Authorization", "Bearer " + TestKeys.portalAdmin)])
                #expect(viaBearer.status == 405)
            }
        }
    }

    @Test("over HTTPS the session cookie is Secure as well, and works over HTTP/1.1 and HTTP/2")
    func secureSession() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files = try FrontTLSFiles(directory: directory)
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim, listen: files.listen(), frontCAFile: files.ca) { gw in
                let opened = try await gw.send(.post, "/v1/auth/session")
                let session = try #require(opened.headers.first { $0.name.lowercased() == "set-cookie" && $0.value.hasPrefix("vgw_status=") }?.value)
                #expect(session.contains("; Secure"), "\(session)")
                let cookie = try #require(session.split(separator: ";").first.map(String.init))
                for version in [TransferOptions.HTTPVersion.http1, .http2Preferred] {
                    var client = gw
                    client.callerOptions.httpVersion = version
                    #expect(try await client.get("/v1/status", key: nil, headers: [("Cookie", cookie)]).status == 200, "\(version)")
                }
            }
        }
    }

    @Test("the page and its assets: strict CSP, nosniff, no referrer, no framing, served from the gateway")
    func page() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                for (path, type) in [("/status", "text/html"), ("/status.js", "text/javascript"), ("/status.css", "text/css")] {
                    let response = try await gw.get(path, key: nil)
                    #expect(response.status == 200, "\(path)")
                    #expect(response.header("content-type")?.hasPrefix(type) == true)
                    let csp = response.header("content-security-policy") ?? ""
                    #expect(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"))
                    #expect(response.header("x-content-type-options") == "nosniff")
                    #expect(response.header("referrer-policy") == "no-referrer")
                }
                let html = try await gw.get("/status", key: nil).text
                let scripts = html.components(separatedBy: "<script").dropFirst()
                #expect(!scripts.isEmpty && scripts.allSatisfy { $0.hasPrefix(" src=\"/") }, "only scripts from the gateway, none inline")
                #expect(html.range(of: #"\son[a-z]+\s*="#, options: .regularExpression) == nil, "no inline event handlers")
                #expect(!html.contains("style="), "no inline styles")
                #expect(!html.contains("http://") && !html.contains("https://"), "nothing from elsewhere")
                let icon = try await gw.get("/status.svg", key: nil)
                #expect(icon.status == 200 && icon.header("content-type") == "image/svg+xml")
                #expect(icon.header("x-frame-options") == "DENY")
            }
        }
    }

    @Test("a stopped VSPC turns its row down with the reason at the next probe, and the other upstream stays ok")
    func down() async throws {
        try await withSimulator(products: [.vb365]) { vb365 in
            try await withSimulator(products: [.vspc]) { vspc in
                try await withGateway(vb365: vb365, vspc: vspc, extra: "health: { probeInterval: 1s }") { gw in
                    #expect(row(try await status(gw).1, "vspc-main")?["mark"] as? String == "ok")
                    await vspc.stop()
                    gw.clock.advance(by: .seconds(2))  // past the probe interval
                    let body = try await status(gw).1
                    let down = try #require(row(body, "vspc-main"))
                    #expect(down["mark"] as? String == "down")
                    #expect(down["reachable"] as? Bool == false)
                    #expect((down["reason"] as? String)?.contains("vspc-main") == true, "\(down)")
                    #expect((down["lastError"] as? [String: Any])?["code"] as? String == "upstream.connect")
                    #expect(row(body, "vb365-eu")?["mark"] as? String == "ok")
                    #expect(body["mark"] as? String == "degraded")
                }
            }
        }
    }
}
