import HTTPTransport
import Foundation
import GatewayTestSupport
import Testing
import VeeamSimulator

#if canImport(Glibc)
import Glibc
#endif

/// The event-loop hot path (`listen.hotPath`) against the router: two gateways over one
/// simulator, one with the hot path and one without, asked the same questions. Every answer must
/// be the same status, the same headers (but `Date`) and the same body; and the hot gateway's
/// `veeam_gateway_hot_path_responses_total` must show that it, not the router, answered.
@Suite("End to end: hot path and router give identical answers", .serialized)
struct HotPathTests {
    static let otherTenantPath = "/v1/tenants/vspc-main.0f8e7d6c-5b4a-4392-8170-6e5d4c3b2a19"

    func withPair(_ body: (RunningGateway, RunningGateway, RunningSimulator) async throws -> Void) async throws {
        // One frozen clock for both: their answers are compared header by header, Age included.
        let clock = ManualClock()
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim, listen: "hotPath: true", clock: clock) { hot in
                try await withGateway(vb365: sim, vspc: sim, listen: "hotPath: false", clock: clock) { routed in
                    try await body(hot, routed, sim)
                }
            }
        }
    }

    /// Asks both gateways; expects the same answer, returns the hot one.
    @discardableResult
    func same(
        _ hot: RunningGateway, _ routed: RunningGateway, _ path: String, key: String?, headers: [(name: String, value: String)] = [],
        _ note: String, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> UpstreamResponse {
        let id = "hot-path-test-\(UUID().uuidString.lowercased())"
        let all = headers + [("X-Request-Id", id)]
        let a = try await hot.get(path, key: key, headers: all)
        let b = try await routed.get(path, key: key, headers: all)
        compare(a, b, note, sourceLocation: sourceLocation)
        #expect(a.header("x-request-id") == id, "\(note): request id", sourceLocation: sourceLocation)
        return a
    }

    /// Same status, same headers but `Date` (names compared case-insensitively), same body.
    func compare(_ a: UpstreamResponse, _ b: UpstreamResponse, _ note: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a.status == b.status, "\(note): status", sourceLocation: sourceLocation)
        let sameBody = a.body == b.body
        #expect(sameBody, "\(note): body\n\(a.text.prefix(300))\n\(b.text.prefix(300))", sourceLocation: sourceLocation)
        let fields = { (r: UpstreamResponse) in
            r.headers.filter { $0.name.lowercased() != "date" }.map { "\($0.name.lowercased()): \($0.value)" }.sorted()
        }
        #expect(fields(a) == fields(b), "\(note): headers", sourceLocation: sourceLocation)
        #expect(a.header("date") != nil && b.header("date") != nil, "\(note): Date", sourceLocation: sourceLocation)
    }

    func hotAnswers(_ gateway: RunningGateway) async throws -> [String: Int] {
        let text = try await gateway.get("/metrics", key: nil).text
        var counts: [String: Int] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("veeam_gateway_hot_path_responses_total{") {
            guard let open = line.firstIndex(of: "\""), let close = line[line.index(after: open)...].firstIndex(of: "\""),
                let value = line.split(separator: " ").last.flatMap({ Double($0) })
            else { continue }
            counts[String(line[line.index(after: open)..<close])] = Int(value)
        }
        return counts
    }

    @Test("hits, 304s, 401s, 403s, 404s and 429s: the same answers from the hot path and the router")
    func identicalAnswers() async throws {
        try await withPair { hot, routed, sim in
            // Fill both caches: the hot gateway serves its misses on the event loop, the other
            // through the router; the answers are the same (a VSPC tenant and a VB365 organization).
            let firstHot = try await same(hot, routed, cloudTenantPath, key: TestKeys.portalAdmin, "miss, VSPC")
            #expect(firstHot.header("x-cache") == "MISS")
            #expect(try await same(hot, routed, organizationPath, key: TestKeys.portalAdmin, "miss, VB365").header("x-cache") == "MISS")
            #expect(try await hotAnswers(hot) == ["200": 2], "the hot gateway's misses were its own")
            let upstreamBefore = sim.state.counters(.vspc).resourceRequests

            let hit = try await same(hot, routed, cloudTenantPath, key: TestKeys.portalAdmin, "hit, X-API-Key")
            #expect(hit.status == 200 && hit.header("x-cache") == "HIT")
            let etag = try #require(hit.header("etag"))
            try await same(hot, routed, cloudTenantPath, key: nil, headers: [("Authorization", "Bearer \(TestKeys.spAdmin)")], "hit, Bearer API key")
            try await same(hot, routed, organizationPath, key: TestKeys.abcApp, "hit, scoped caller on its organization")
            let notModified = try await same(hot, routed, cloudTenantPath, key: TestKeys.spGlobalAdmin, headers: [("If-None-Match", etag)], "304")
            #expect(notModified.status == 304 && notModified.body.isEmpty)
            try await same(hot, routed, cloudTenantPath, key: TestKeys.portalAdmin, headers: [("If-None-Match", "\"x\", \(etag)")], "304, list")
            try await same(hot, routed, cloudTenantPath, key: TestKeys.portalAdmin, headers: [("If-None-Match", "\"other\"")], "200, other ETag")

            let missing = try await same(hot, routed, cloudTenantPath, key: nil, "401, no credentials")
            #expect(missing.status == 401 && missing.header("www-authenticate") != nil)
            #expect(try await same(hot, routed, cloudTenantPath, key: "not-a-key", "401, bad key").status == 401)
            let bogusJWT = "eyJhbGciOiJIUzI1NiIsImtpZCI6InZlZWFtLWdhdGV3YXkifQ.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
            #expect(try await same(hot, routed, cloudTenantPath, key: nil, headers: [("Authorization", "Bearer \(bogusJWT)")], "401, forged JWT").status == 401)
            let forbidden = try await same(hot, routed, cloudTenantPath, key: TestKeys.companyOwner, "403, seed 004")
            #expect(forbidden.status == 403 && !forbidden.text.contains("Alpha"))
            #expect(try await same(hot, routed, cloudTenantPath, key: TestKeys.spOperator, "403, operator").status == 403)
            #expect(try await same(hot, routed, cloudTenantPath, key: TestKeys.abcApp, "404, scoped elsewhere").status == 404)

            // Gateway tokens (HS256, verified synchronously on the hot path).
            let token = try await issueToken(hot, id: "sp-admin", key: TestKeys.spAdmin)
            try await same(hot, routed, cloudTenantPath, key: nil, headers: [("Authorization", "Bearer \(token)")], "hit, gateway token")
            let ownerToken = try await issueToken(hot, id: "company-owner", key: TestKeys.companyOwner)
            #expect(try await same(hot, routed, cloudTenantPath, key: nil, headers: [("Authorization", "Bearer \(ownerToken)")], "403, gateway token").status == 403)
            let tampered = String(token.dropLast(2)) + (token.hasSuffix("AA") ? "BB" : "AA")
            #expect(try await same(hot, routed, cloudTenantPath, key: nil, headers: [("Authorization", "Bearer \(tampered)")], "401, tampered token").status == 401)

            // The limited caller (burst 3): hits and refusals take one token each on both paths.
            var statuses: [Int] = []
            for _ in 0..<4 { statuses.append(try await same(hot, routed, cloudTenantPath, key: TestKeys.limited, "limited caller").status) }
            #expect(statuses == [200, 200, 200, 429])

            #expect(sim.state.counters(.vspc).resourceRequests == upstreamBefore, "hits never reach the upstream")
            let answered = try await hotAnswers(hot)
            #expect(answered["200"] ?? 0 >= 8, "\(answered)")
            #expect(answered["304"] == 2 && answered["401"] == 4 && answered["403"] == 3 && answered["404"] == 1 && answered["429"] == 1, "\(answered)")
            #expect(try await hotAnswers(routed).isEmpty, "the router-only gateway never uses the hot path")

            // Lists. Their bodies carry each source's fetch time, so two gateways never agree;
            // on the hot gateway every list request is the hot path's (a miss through the
            // pipeline's fill, in a task on the event loop): the first HIT is rendered by the fill,
            // the next answered at once from that rendering, and those two must be the same.
            for (path, key) in [("/v1/tenants", TestKeys.portalAdmin), ("/v1/tenants?limit=2&offset=1", TestKeys.spAdmin), ("/v1/tenants", TestKeys.abcApp)] {
                let before = try await hotAnswers(hot)["200"] ?? 0
                var byFill = try await hot.get(path, key: key, headers: [("X-Request-Id", "list-check")])
                var asked = 1
                if byFill.header("x-cache") == "MISS" {
                    byFill = try await hot.get(path, key: key, headers: [("X-Request-Id", "list-check")])
                    asked += 1
                }
                #expect(try await hotAnswers(hot)["200"] ?? 0 == before + asked, "fills of lists are the hot path's too")
                let byHotPath = try await hot.get(path, key: key, headers: [("X-Request-Id", "list-check")])
                #expect(try await hotAnswers(hot)["200"] ?? 0 == before + asked + 1)
                compare(byHotPath, byFill, "list \(path) as \(key)")
                #expect(byHotPath.header("x-cache") == "HIT")
                let etag = try #require(byFill.header("etag"))
                let notModified = try await hot.get(path, key: key, headers: [("If-None-Match", etag)])
                #expect(notModified.status == 304 && notModified.body.isEmpty)
            }
            let scoped = try await hot.get("/v1/tenants", key: TestKeys.abcApp)
            #expect(scoped.text.contains("abc.onmicrosoft.com") && !scoped.text.contains("Alpha"))
            #expect(try await same(hot, routed, "/v1/tenants?limit=0", key: TestKeys.portalAdmin, "400, bad limit").status == 400)
            let final = try await hotAnswers(hot)
            #expect(final["304"] == 5, "\(final)")

        }
    }

    @Test("pass-through: misses, hits, 304s and every refusal are the same on the hot path and the router, and the hot gateway answers them all")
    func passThroughAnswers() async throws {
        try await withPair { hot, routed, sim in
            let companies = "/v1/upstreams/vspc-main/api/infrastructure/sites/tenants?limit=2"
            let miss = try await same(hot, routed, companies, key: TestKeys.portalAdmin, "pass-through miss")
            #expect(miss.status == 200 && miss.header("x-cache") == "MISS")
            let reads = sim.state.counters(.vspc).resourceRequests
            let hit = try await same(hot, routed, companies, key: TestKeys.spAdmin, "pass-through hit")
            #expect(hit.header("x-cache") == "HIT")
            let etag = try #require(hit.header("etag"))
            #expect(try await same(hot, routed, companies, key: TestKeys.portalAdmin, headers: [("If-None-Match", etag)], "pass-through 304").status == 304)
            #expect(sim.state.counters(.vspc).resourceRequests == reads, "hits cost VSPC nothing")
            #expect(try await same(hot, routed, companies, key: TestKeys.companyOwner, "pass-through 403, roles").status == 403)
            #expect(try await same(hot, routed, "/v1/upstreams/vspc-main/api/users/me", key: TestKeys.portalAdmin, "pass-through 403, policy").status == 403)
            #expect(try await same(hot, routed, "/v1/upstreams/vspc-main/api/users%2Fme", key: TestKeys.portalAdmin, "pass-through 400").status == 400)
            #expect(try await same(hot, routed, companies, key: nil, "pass-through 401").status == 401)
            #expect(try await same(hot, routed, "/v1/upstreams/nowhere/api/alarms/active", key: TestKeys.portalAdmin, "pass-through 404").status == 404)
            let answered = try await hotAnswers(hot)
            #expect(answered["200"] == 2 && answered["304"] == 1 && answered["403"] == 2 && answered["400"] == 1 && answered["401"] == 1, "\(answered)")
            #expect(try await hotAnswers(routed).isEmpty)
        }
    }

    @Test("a miss on the hot gateway is served on its event loop and costs one rate token, as on the router")
    func missesCostOneToken() async throws {
        try await withPair { hot, routed, sim in
            let hotBefore = hot.upstreamClient.statistics
            let routedBefore = routed.upstreamClient.statistics
            var statuses: [String] = []
            for path in [cloudTenantPath, Self.otherTenantPath, organizationPath, cloudTenantPath] {
                let a = try await hot.get(path, key: TestKeys.limited)
                let b = try await routed.get(path, key: TestKeys.limited)
                #expect(a.status == b.status)
                statuses.append("\(a.status) \(a.header("x-cache") ?? "-")")
            }
            #expect(statuses == ["200 MISS", "200 MISS", "200 MISS", "429 -"])
            #expect(try await hotAnswers(hot) == ["200": 3, "429": 1])
            // Every upstream call those misses made (the reads, and the logins of accounts not
            // signed in yet) was started by libcurl on the connection's own loop, without a change
            // of thread; the router's misses run in tasks off the loops and start none there.
            let hotAfter = hot.upstreamClient.statistics
            let routedAfter = routed.upstreamClient.statistics
            let hotStarted = hotAfter.transfersStarted - hotBefore.transfersStarted
            #expect(hotStarted >= 3)
            #expect(hotAfter.transfersOnCallerLoop - hotBefore.transfersOnCallerLoop == hotStarted)
            #expect(routedAfter.transfersStarted - routedBefore.transfersStarted >= 3)
            #expect(routedAfter.transfersOnCallerLoop == routedBefore.transfersOnCallerLoop)
            // A `Cache-Control: no-cache` from an administrator always reaches the upstream, on
            // either path, with the same answer; from a caller who is not one, it is a hit.
            let before = sim.state.counters(.vspc).resourceRequests
            let bypass = try await same(hot, routed, cloudTenantPath, key: TestKeys.portalAdmin, headers: [("Cache-Control", "max-age=0, No-Cache")], "bypass")
            #expect(bypass.header("x-cache") == "BYPASS")
            #expect(sim.state.counters(.vspc).resourceRequests == before + 2)
            #expect(try await hotAnswers(hot)["200"] == 4)
            let ignored = try await hot.get(cloudTenantPath, key: TestKeys.spAdmin, headers: [("Cache-Control", "no-cache")])
            #expect(ignored.status == 200 && ignored.header("x-cache") == "HIT")
            #expect(sim.state.counters(.vspc).resourceRequests == before + 2)
        }
    }

    @Test("a list miss on the hot gateway is the hot path's too (its fill on the event loop), admitted once: one rate token per request, as on the router")
    func listMissesCostOneToken() async throws {
        try await withPair { hot, routed, _ in
            var statuses: [String] = []
            for _ in 0..<4 {
                let a = try await hot.get("/v1/tenants", key: TestKeys.limited)
                let b = try await routed.get("/v1/tenants", key: TestKeys.limited)
                #expect(a.status == b.status)
                statuses.append("\(a.status) \(a.header("x-cache") ?? "-")")
            }
            // The burst is 3: the fourth request finds the bucket empty on both gateways, so no
            // request took a second token on its way through the pipeline.
            #expect(statuses == ["200 MISS", "200 HIT", "200 HIT", "429 -"])
            #expect(try await hotAnswers(hot) == ["200": 3, "429": 1], "every answer, the miss's fill included, was the hot path's")
        }
    }

    @Test("every status line carries its reason phrase, on the hot path and the router alike (403 Forbidden, not 403 with nothing)")
    func reasonPhrases() async throws {
        try await withPair { hot, routed, _ in
            #expect(try await hot.get(cloudTenantPath).status == 200, "the hit below is a hit")
            let key = TestKeys.portalAdmin
            func get(_ path: String, _ key: String?) -> String {
                "GET \(path) HTTP/1.1\r\nHost: x\r\n" + (key.map { "X-API-Key: \($0)\r\n" } ?? "") + "\r\n"
            }
            let requests: [(String, String)] = [
                (get(cloudTenantPath, key), "200 OK"),
                (get(cloudTenantPath, nil), "401 Unauthorized"),
                (get(cloudTenantPath, TestKeys.companyOwner), "403 Forbidden"),
                (get("/v1/tenants/not%20an%20id", key), "400 Bad Request"),
                (get(Self.otherTenantPath, TestKeys.abcApp), "404 Not Found"),
                (get("/v1/nothing-here", key), "404 Not Found"),
                ("DELETE /v1/tenants HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\n\r\n", "405 Method Not Allowed"),
            ]
            for gateway in [hot, routed] {
                let port = try #require(Int(gateway.baseURL.split(separator: ":").last ?? ""))
                for (request, expected) in requests {
                    let lines = try await RawConnection.statusLines(port: port, bytes: Array(request.utf8))
                    #expect(lines == ["HTTP/1.1 \(expected)"], "\(request.prefix(40)) on \(gateway.baseURL)")
                }
            }
        }
    }

    @Test("one connection: pipelined hits, misses, a POST with a body and a chunked request are answered in order")
    func pipelinedOrder() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim, listen: "hotPath: true") { gw in
                #expect(try await gw.get(cloudTenantPath).status == 200)
                let port = try #require(Int(gw.baseURL.split(separator: ":").last ?? ""))
                sim.state.setFaults(SimulatorFaults(latencyMs: 300), for: .vspc)
                let key = TestKeys.portalAdmin
                func get(_ path: String, _ id: String) -> String {
                    "GET \(path) HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\nX-Request-Id: \(id)\r\n\r\n"
                }
                let form = "grant_type=client_credentials&client_id=portal-admin&client_secret=\(key)"
                let post = "POST /v1/auth/token HTTP/1.1\r\nHost: x\r\nX-Request-Id: r4\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: \(form.utf8.count)\r\n\r\n\(form)"
                let stream = get(cloudTenantPath, "r1") + get(Self.otherTenantPath, "r2") + get(cloudTenantPath, "r3") + post + get(cloudTenantPath, "r5")
                    + get("/healthz", "r6") + get(cloudTenantPath, "r7")
                // Sent in one write, then the same again a byte at a time.
                let whole = try await RawConnection.exchange(port: port, chunks: [Array(stream.utf8)], responses: 7)
                #expect(whole.map(\.requestID) == ["r1", "r2", "r3", "r4", "r5", "r6", "r7"])
                #expect(whole.map(\.status) == [200, 200, 200, 200, 200, 200, 200])
                let bytes = try await RawConnection.exchange(port: port, chunks: Array(stream.utf8).map { [$0] }, responses: 7)
                #expect(bytes.map(\.requestID) == ["r1", "r2", "r3", "r4", "r5", "r6", "r7"])
                #expect(bytes[0].body == whole[0].body)
                // Chunked: the connection is handed to the codec for good, and still answered.
                let chunked = "POST /v1/auth/token HTTP/1.1\r\nHost: x\r\nX-Request-Id: c1\r\nTransfer-Encoding: chunked\r\n\r\n\(String(form.utf8.count, radix: 16))\r\n\(form)\r\n0\r\n\r\n"
                let handedOver = try await RawConnection.exchange(port: port, chunks: [Array((chunked + get(cloudTenantPath, "c2")).utf8)], responses: 2)
                #expect(handedOver.map(\.requestID) == ["c1", "c2"])
                #expect(handedOver.map(\.status) == [200, 200])
                sim.state.setFaults(SimulatorFaults(), for: .vspc)
            }
        }
    }

    @Test("a peer that pipelines 20,000 hits and reads late gets every answer, in order (backpressure pauses and resumes)")
    func pipelineWithoutReading() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim, listen: "hotPath: true") { gw in
                #expect(try await gw.get(cloudTenantPath).status == 200)
                let port = try #require(Int(gw.baseURL.split(separator: ":").last ?? ""))
                let count = 20000  // about 26 MB of answers: more than loopback's socket buffers hold
                var stream = ""
                for index in 0..<count {
                    stream += "GET \(cloudTenantPath) HTTP/1.1\r\nHost: x\r\nX-API-Key: \(TestKeys.bulk)\r\nX-Request-Id: p\(index)\r\n\r\n"
                }
                // The client's receive buffer is small and it reads nothing for 3 s: the gateway
                // must stop (and stop reading), then resume when the client reads.
                let answers = try await RawConnection.exchange(port: port, chunks: [Array(stream.utf8)], responses: count, readAfter: 3.0)
                #expect(!gw.logs.lines(containing: ["hot path paused"]).isEmpty, "the gateway paused at least once")
                #expect(answers.count == count)
                #expect(answers.allSatisfy { $0.status == 200 })
                #expect(answers.map(\.requestID) == (0..<count).map { "p\($0)" })
            }
        }
    }

    @Test("the idle timeout closes a quiet connection, not a busy one answered only by the hot path")
    func idleTimeout() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim, listen: "hotPath: true, idleTimeout: 1s") { gw in
                #expect(try await gw.get(cloudTenantPath).status == 200)
                let port = try #require(Int(gw.baseURL.split(separator: ":").last ?? ""))
                let request = Array("GET \(cloudTenantPath) HTTP/1.1\r\nHost: x\r\nX-API-Key: \(TestKeys.portalAdmin)\r\n\r\n".utf8)
                let outcome = try await RawConnection.busyThenQuiet(port: port, request: request, every: 0.3, count: 8, quiet: 2.5)
                #expect(outcome.answered == 8, "all answered on one connection over 2.4 s, past the 1 s idle timeout")
                #expect(outcome.closedWhenQuiet)
            }
        }
    }

    @Test("odd and hostile framing (smuggling shapes, bare LF, folding, repeats) gets the same answers with the hot path on and off")
    func hostileFraming() async throws {
        try await withPair { hot, routed, _ in
            for gateway in [hot, routed] { #expect(try await gateway.get(cloudTenantPath).status == 200) }
            let key = TestKeys.portalAdmin
            let hit = "GET \(cloudTenantPath) HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\n\r\n"
            // Each stream, and what both paths must answer on one connection (a refused head closes it).
            let streams: [(name: String, bytes: String, expected: [Int])] = [
                ("CL and TE", "GET \(cloudTenantPath) HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hit, [400]),
                ("two Content-Lengths", "GET \(cloudTenantPath) HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\nContent-Length: 0\r\nContent-Length: 7\r\n\r\n" + hit, [400]),
                ("bare LF", "GET \(cloudTenantPath) HTTP/1.1\nHost: x\nX-API-Key: \(key)\n\n" + hit, [400]),
                ("folded header", "GET \(cloudTenantPath) HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\n folded\r\n\r\n" + hit, [400]),
                ("space before colon", "GET \(cloudTenantPath) HTTP/1.1\r\nHost: x\r\nX-API-Key : \(key)\r\n\r\n" + hit, [400]),
                ("two keys", "GET \(cloudTenantPath) HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\nX-API-Key: \(TestKeys.companyOwner)\r\n\r\n" + hit, [401, 200]),
                ("HTTP/1.0", "GET \(cloudTenantPath) HTTP/1.0\r\nX-API-Key: \(key)\r\n\r\n", [200]),
                ("lowercase method", "get \(cloudTenantPath) HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\n\r\n" + hit, [400]),
                ("absolute form", "GET http://x\(cloudTenantPath) HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\n\r\n" + hit, [200, 200]),
                ("NUL in a value", "GET \(cloudTenantPath) HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\u{0}\r\n\r\n" + hit, [400]),
                ("body on a GET", "GET \(cloudTenantPath) HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\nContent-Length: 4\r\n\r\nabcd" + hit, [200, 200]),
                ("Connection: close", "GET \(cloudTenantPath) HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\nConnection: close\r\n\r\n" + hit, [200]),
                // The head bounds (100 fields, 16 KiB a field, 32 KiB a head): a head beyond them
                // is refused alike (431), whether the hot path answers or not (it arrives here in one read).
                ("100 fields", Self.boundedHead(key: key, fields: 98, fieldBytes: 20) + hit, [200, 200]),
                ("101 fields", Self.boundedHead(key: key, fields: 99, fieldBytes: 20) + hit, [431]),
                ("a 16 KiB field", Self.boundedHead(key: key, fields: 1, fieldBytes: 16 * 1024 - 2) + hit, [200, 200]),
                ("a 17 KiB field", Self.boundedHead(key: key, fields: 1, fieldBytes: 17 * 1024) + hit, [431]),
                ("a 33 KiB head", Self.boundedHead(key: key, fields: 3, fieldBytes: 11 * 1024) + hit, [431]),
            ]
            for (name, stream, expected) in streams {
                var answers: [[Int]] = []
                for gateway in [hot, routed] {
                    let port = try #require(Int(gateway.baseURL.split(separator: ":").last ?? ""))
                    answers.append(try await RawConnection.statuses(port: port, bytes: Array(stream.utf8)))
                }
                #expect(answers[0] == answers[1], "\(name): hot path \(answers[0]), router \(answers[1])")
                #expect(answers[0] == expected, "\(name): \(answers[0]), expected \(expected)")
            }
        }
    }

    @Test("partial heads are closed at the head deadline, and promised bodies that stop at the idle timeout (hot path on and off)",
          .serialized, arguments: [true, false])
    func slowAndPartialRequests(hotPath: Bool) async throws {
        // One setting at a time (640 sockets at once on a loaded CI machine made the timing
        // margins too thin), and a 2 s margin on each side of the idle timeout.
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim, listen: "hotPath: \(hotPath), idleTimeout: 4s, requestHeadTimeout: 1s") { gw in
                let port = try #require(Int(gw.baseURL.split(separator: ":").last ?? ""))
                let partial = Array("GET /v1/tenants HTTP/1.1\r\nHost: x\r\nX-API-Key: \(TestKeys.portalAdmin)\r\n".utf8)
                let stalled = Array("POST /v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant".utf8)
                let outcome = try await RawConnection.onThread { () throws -> [Int] in
                    var partialFDs: [Int32] = []
                    for _ in 0..<300 {
                        let fd = try RawConnection.connect(port: port)
                        try RawConnection.send(fd, partial)
                        partialFDs.append(fd)
                    }
                    let stalledFDs = try (0..<20).map { _ -> Int32 in
                        let fd = try RawConnection.connect(port: port)
                        try RawConnection.send(fd, stalled)
                        return fd
                    }
                    // The head deadline (1 s) plus a second: every partial head is closed by now.
                    usleep(2_000_000)
                    func closed(_ fd: Int32) -> Bool {
                        var byte: UInt8 = 0
                        return recv(fd, &byte, 1, Int32(MSG_DONTWAIT)) == 0
                    }
                    let partialClosed = partialFDs.filter(closed).count
                    let stalledOpen = stalledFDs.filter { !closed($0) }.count  // still within the idle timeout
                    // The idle timeout (4 s) plus a second: the stalled bodies are closed too.
                    usleep(3_000_000)
                    let stalledClosed = stalledFDs.filter(closed).count
                    for fd in partialFDs + stalledFDs { close(fd) }
                    return [partialClosed, stalledOpen, stalledClosed]
                }
                #expect(outcome[0] == 300, "\(outcome[0]) of 300 partial heads closed within the deadline and a second")
                #expect(outcome[1] == 20, "a stalled body is given the idle timeout, not the head deadline")
                #expect(outcome[2] == 20, "\(outcome[2]) of 20 stalled bodies closed within the idle timeout and a second")
                // The gateway still serves.
                let served = try await gw.get("/v1/tenants")
                #expect(served.status == 200)
            }
        }
    }

    /// A hit's head with `fields` filler fields of `fieldBytes` bytes each (name, colon, value)
    /// besides `Host` and `X-API-Key`.
    static func boundedHead(key: String, fields: Int, fieldBytes: Int) -> String {
        let filler = (0..<fields).map { i -> String in
            let name = "X-F\(i):"
            return name + String(repeating: "a", count: max(1, fieldBytes - name.utf8.count)) + "\r\n"
        }
        return "GET \(cloudTenantPath) HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\n" + filler.joined() + "\r\n"
    }

    @Test("a 32 KiB head trickled a byte at a time is scanned once, not once per byte (linear work)")
    func trickledHeadLinear() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim, listen: "hotPath: true") { gw in
                let port = try #require(Int(gw.baseURL.split(separator: ":").last ?? ""))
                func scanned() async throws -> Int {
                    let text = try await gw.get("/metrics", key: nil).text
                    let line = text.split(separator: "\n").first { $0.hasPrefix("veeam_gateway_hot_path_partial_head_bytes_scanned_total") }
                    return line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
                }
                let before = try await scanned()
                let filler = "X-Filler: " + String(repeating: "a", count: 1000) + "\r\n"
                var head = "GET /v1/tenants HTTP/1.1\r\nHost: x\r\nX-API-Key: \(TestKeys.portalAdmin)\r\n"
                while head.utf8.count < 32 * 1024 - 1100 { head += filler }
                head += "\r\n"
                let bytes = Array(head.utf8)
                let reads = try await RawConnection.onThread { () throws -> Int in
                    let fd = try RawConnection.connect(port: port)
                    defer { close(fd) }
                    for byte in bytes { try RawConnection.send(fd, [byte]) }
                    var reply = [UInt8](repeating: 0, count: 512)
                    return recv(fd, &reply, reply.count, 0)
                }
                #expect(reads > 0, "the head was answered")
                let work = try await scanned() - before
                // Rescanning from the first byte on every read would be up to n²/2 (~500 million bytes).
                #expect(work > 0 && work <= 2 * bytes.count, "\(work) bytes scanned for a \(bytes.count)-byte head")
            }
        }
    }

    @Test("request ids made by either path are distinct version-4 UUIDs")
    func requestIDs() async throws {
        try await withPair { hot, routed, _ in
            var seen: Set<String> = []
            let pattern = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
            for gateway in [hot, routed] {
                for _ in 0..<100 {
                    let id = try #require(try await gateway.get(cloudTenantPath).header("x-request-id"))
                    #expect(id.wholeMatch(of: pattern) != nil, "\(id)")
                    seen.insert(id)
                }
            }
            #expect(seen.count == 200)
            #expect(try await hotAnswers(hot)["200"] ?? 0 >= 99)
        }
    }

    func issueToken(_ gateway: RunningGateway, id: String, key: String) async throws -> String {
        let body = UpstreamRequest.Body.form([("grant_type", "client_credentials"), ("client_id", id), ("client_secret", key)])
        let response = try await gateway.client.perform(
            UpstreamRequest(method: .post, url: gateway.baseURL + "/v1/auth/token", body: body),
            options: TransferOptions())
        let object = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
        return try #require(object["access_token"] as? String)
    }
}

/// A plain TCP client for what libcurl will not do: pipelining and byte-at-a-time writes. Runs
/// on a thread of its own (blocking sockets, 10 s receive timeout).
enum RawConnection {
    struct Answer {
        var status: Int
        var requestID: String?
        var body: [UInt8]
    }

    static func exchange(port: Int, chunks: [[UInt8]], responses: Int, readAfter delay: Double = 0) async throws -> [Answer] {
        try await onThread {
            let fd = try connect(port: port, receiveBuffer: delay > 0 ? 4096 : nil)
            defer { close(fd) }
            if delay > 0 {
                // Sends on a thread of its own: a peer that writes everything before reading
                // anything would deadlock with a server that (rightly) stops reading.
                let sender = Thread { try? send(fd, chunks.flatMap { $0 }) }
                sender.start()
                usleep(useconds_t(delay * 1_000_000))
            } else {
                for chunk in chunks { try send(fd, chunk) }
            }
            var reader = Reader(fd: fd)
            return try (0..<responses).map { _ in try reader.next() }
        }
    }

    /// Sends `bytes`, reads until the server closes or is quiet for half a second; the status
    /// codes of every response seen, in order.
    static func statuses(port: Int, bytes: [UInt8]) async throws -> [Int] {
        try await statusLines(port: port, bytes: bytes).compactMap { Int($0.dropFirst("HTTP/1.1 ".count).prefix(3)) }
    }

    /// Sends `bytes`; the status line of every response seen (until close or half a second of quiet).
    static func statusLines(port: Int, bytes: [UInt8]) async throws -> [String] {
        try await onThread {
            let fd = try connect(port: port)
            defer { close(fd) }
            var timeout = timeval(tv_sec: 0, tv_usec: 500_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            try send(fd, bytes)
            var received: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = recv(fd, &chunk, chunk.count, 0)
                if count <= 0 { break }
                received += chunk[0..<count]
            }
            let text = String(decoding: received, as: UTF8.self)
            return text.matches(of: #/HTTP/1\.[01] \d{3}[^\r\n]*/#).map { String($0.output) }
        }
    }

    static func busyThenQuiet(port: Int, request: [UInt8], every: Double, count: Int, quiet: Double) async throws -> (answered: Int, closedWhenQuiet: Bool) {
        try await onThread {
            let fd = try connect(port: port)
            defer { close(fd) }
            var reader = Reader(fd: fd)
            var answered = 0
            for _ in 0..<count {
                try send(fd, request)
                if try reader.next().status == 200 { answered += 1 }
                usleep(useconds_t(every * 1_000_000))
            }
            usleep(useconds_t(quiet * 1_000_000))
            var byte: UInt8 = 0
            let read = recv(fd, &byte, 1, 0)
            return (answered, read == 0)
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try work() }) }.start()
        }
    }

    static func connect(port: Int, receiveBuffer: Int32? = nil) throws -> Int32 {
        try connectToLoopback(port: port) { fd in
            if var size = receiveBuffer { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size)) }
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    static func send(_ fd: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw Failure(description: "send") }
            offset += sent
        }
    }

    /// Reads HTTP/1.1 responses framed by `Content-Length` (the gateway's are).
    struct Reader {
        let fd: Int32
        var buffer: [UInt8] = []
        /// Where the next response starts in `buffer`.
        var start = 0

        mutating func fill() throws {
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = recv(fd, &chunk, chunk.count, 0)
            guard count > 0 else { throw Failure(description: "connection closed or timed out with \(buffer.count - start) bytes unread") }
            buffer += chunk[0..<count]
        }

        mutating func next() throws -> Answer {
            if start > 1 << 20 {
                buffer.removeFirst(start)
                start = 0
            }
            var headEnd: Int?
            var scanned = start
            while headEnd == nil {
                while scanned + 3 < buffer.count {
                    if buffer[scanned] == 13, buffer[scanned + 1] == 10, buffer[scanned + 2] == 13, buffer[scanned + 3] == 10 {
                        headEnd = scanned
                        break
                    }
                    scanned += 1
                }
                if headEnd == nil { try fill() }
            }
            guard let end = headEnd else { throw Failure(description: "no head") }
            let head = String(decoding: buffer[start..<end], as: UTF8.self)
            let lines = head.components(separatedBy: "\r\n")
            let status = Int(lines[0].split(separator: " ")[1]) ?? 0
            var length = 0
            var requestID: String?
            for line in lines.dropFirst() {
                let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2 else { continue }
                if parts[0].lowercased() == "content-length" { length = Int(parts[1]) ?? 0 }
                if parts[0].lowercased() == "x-request-id" { requestID = parts[1] }
            }
            while buffer.count < end + 4 + length { try fill() }
            let body = Array(buffer[(end + 4)..<(end + 4 + length)])
            start = end + 4 + length
            return Answer(status: status, requestID: requestID, body: body)
        }
    }
}
