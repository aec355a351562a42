import Foundation
import GatewayTestSupport
import HTTPTransport
import Testing
import VeeamSimulator

/// Anonymous load must not reach Veeam. `/readyz` answers from the last probe,
/// probes at most once per `health.probeInterval` outside the callers' queue, and tells anonymous
/// callers only ready or not.
@Suite("Readiness probes and what /readyz tells whom", .serialized)
struct ReadinessTests {
    static let usersMe = "GET /api/v3/users/me"

    /// `count` anonymous GET /readyz at once; their statuses.
    static func flood(_ gw: RunningGateway, count: Int, key: String? = nil) async throws -> [Int] {
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<count { group.addTask { try await gw.get("/readyz", key: key).status } }
            var statuses: [Int] = []
            for try await status in group { statuses.append(status) }
            return statuses
        }
    }

    @Test("300 anonymous /readyz cost one probe: one users/me, one login per account; the answer is only ready or not")
    func anonymousFlood() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim, extra: "health: { probeInterval: 1h }") { gw in
                let statuses = try await Self.flood(gw, count: 300)
                #expect(statuses.allSatisfy { $0 == 200 }, "\(Set(statuses))")
                #expect(sim.state.counters(.vspc).requests[Self.usersMe] == 1)
                #expect(sim.state.counters(.vspc).logins == 1)
                #expect(sim.state.counters(.vb365).logins == 3)
                let anonymous = try await gw.get("/readyz", key: nil)
                let body = try #require(try JSONSerialization.jsonObject(with: Data(anonymous.body)) as? [String: Any])
                #expect(body.keys.sorted() == ["status"], "\(anonymous.text)")
                #expect(body["status"] as? String == "ready")
                #expect(!anonymous.text.contains("vspc-main") && !anonymous.text.contains("PortalAdministrator"))
                // A caller that is not an administrator learns no more.
                let owner = try await gw.get("/readyz", key: TestKeys.companyOwner)
                #expect(owner.status == 200 && !owner.text.contains("vspc-main"), "\(owner.text)")
                // An administrator gets every upstream, the account's role included.
                let admin = try await gw.json("/readyz")
                let upstreams = try #require(admin["upstreams"] as? [[String: Any]])
                #expect(upstreams.compactMap { $0["upstream"] as? String } == ["vb365-eu", "vspc-main"])
                #expect(upstreams.last?["accountRole"] as? String == "PortalAdministrator")
                // Bad credentials are refused, not treated as anonymous.
                #expect(try await gw.get("/readyz", key: "not-a-key-at-all-0000").status == 401)
                #expect(sim.state.counters(.vspc).requests[Self.usersMe] == 1)
            }
        }
    }

    @Test("a failing login is tried once per probe interval, not once per probe request")
    func failingLoginOncePerInterval() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim, vspcPassword: "wrong.pw", extra: "health: { probeInterval: 1h }") { gw in
                let statuses = try await Self.flood(gw, count: 100)
                #expect(statuses.allSatisfy { $0 == 503 }, "\(Set(statuses))")
                for _ in 0..<20 { #expect(try await gw.get("/readyz", key: nil).status == 503) }
                #expect(sim.state.counters(.vspc).loginFailures == 1, "account lockout risk: \(sim.state.counters(.vspc).loginFailures) failed logins")
                let admin = try await gw.json("/readyz")
                let vspc = try #require((admin["upstreams"] as? [[String: Any]])?.last)
                #expect(vspc["tokenObtainable"] as? Bool == false)
                #expect(!(vspc["reason"] as? String ?? "").contains("Not-The-Password-9"))
            }
        }
    }

    @Test("probes run outside the callers' queue: a probe in flight does not turn a caller's miss into a 503")
    func probesDoNotTakeCallersSlots() async throws {
        try await withSimulator(faults: [.vspc: SimulatorFaults(latencyMs: 300)]) { sim in
            try await withGateway(
                vb365: sim, vspc: sim, extra: "health: { probeInterval: 1h }", vspcExtra: "    maxConcurrentRequests: 1\n    maxQueuedRequests: 0\n"
            ) { gw in
                // Log in first (a caller's read), so that the first probe is users/me alone.
                let first = try await gw.get("/v1/tenants/vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4")
                #expect(first.status == 200)
                #expect(gw.service.purgeCache() >= 1)
                let probe = Task { try await gw.get("/readyz", key: TestKeys.portalAdmin) }
                // The probe is at the simulator (held there 300 ms) before the caller's read goes.
                #expect(await eventually { sim.state.counters(.vspc).requests["GET /api/v3/users/me", default: 0] >= 1 })
                let read = try await gw.get("/v1/tenants/vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4")
                #expect(read.status == 200, "\(read.text)")
                let probed = try await probe.value
                #expect(probed.status == 200)
            }
        }
    }

    @Test("metrics.requireCaller: /metrics refuses anonymous callers; by default it does not")
    func metricsRequireCaller() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim, extra: "metrics: { requireCaller: true }") { gw in
                let anonymous = try await gw.get("/metrics", key: nil)
                #expect(anonymous.status == 401)
                #expect(anonymous.header("content-type") == "application/problem+json")
                #expect(try await gw.get("/metrics", key: "not-a-key-at-all-0000").status == 401)
                let known = try await gw.get("/metrics", key: TestKeys.readOnly)
                #expect(known.status == 200)
                #expect(known.text.contains("veeam_gateway"))
            }
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let open = try await gw.get("/metrics", key: nil)
                #expect(open.status == 200)
            }
        }
    }

    @Test("metrics.listen: /metrics on an address of its own, and no longer on the API's")
    func metricsOwnAddress() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim, extra: "metrics: { listen: { host: 127.0.0.1, port: 0 } }") { gw in
                let metricsURL = try #require(gw.metricsURL)
                let scraped = try await gw.client.perform(UpstreamRequest(url: metricsURL + "/metrics"), options: TransferOptions())
                #expect(scraped.status == 200)
                #expect(scraped.text.contains("veeam_gateway"))
                let health = try await gw.client.perform(UpstreamRequest(url: metricsURL + "/healthz"), options: TransferOptions())
                #expect(health.status == 200)
                // Nothing else is served there: the API stays on its own address.
                let api = try await gw.client.perform(
                    UpstreamRequest(url: metricsURL + "/v1/tenants", headers: [("X-API-Key", TestKeys.portalAdmin)]), options: TransferOptions())
                #expect(api.status == 404)
                let onAPI = try await gw.get("/metrics", key: nil)
                #expect(onAPI.status == 404)
                #expect(onAPI.header("content-type") == "application/problem+json")
                #expect(try await gw.get("/v1/tenants").status == 200)
            }
        }
    }
}
