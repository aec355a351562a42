import GatewayAccess
import Foundation
import GatewayCore
import GatewayTestSupport
import Testing
import VeeamSimulator

/// In an optimized build (Swift 6.3.1), a task group whose children return a tuple sometimes hands
/// the parent a corrupted tuple: an organization fan-out with tuple results would store garbage
/// account indices, and the next single read would crash on `orgs[index]` (hence `Indexed`).
/// This runs the real fan-out (three organization accounts over TLS) 2,000 times, one after
/// another and at once, and checks every index it learned, with and without failing accounts.
/// The corruption shows in optimized builds, so CI runs it in the release suite too
/// (`swift test -c release`).
@Suite("Organization fan-out", .serialized)
struct FanOutTests {
    /// The accounts of the harness's vb365-eu, in configuration order, and the organization each reads.
    static let expected = [
        "cbc52c37-df7f-4b03-98f3-036e7d4b3127": 0,  // backup-admin@abc.onmicrosoft.com
        "5d0f3b52-7b58-4c3e-9d0a-3d2b1f6a9e11": 1,  // svc-backup@contoso.local
        "9a7c1e40-2f6b-4d8e-b3a5-0c4d2e6f8a19": 2,  // backup@fabrikam-hybrid.onmicrosoft.com
    ]
    static let admin = Caller(id: "fan-out", roles: [Role.portalAdministrator])

    /// Runs `rounds` uncached VB365 lists on each of `workers` tasks; returns what went wrong.
    static func fanOut(_ service: TenantService, workers: Int, rounds: Int, allowFailures: Bool) async -> [String] {
        await withTaskGroup(of: [String].self) { group in
            for _ in 0..<workers {
                group.addTask {
                    var found: [String] = []
                    for round in 0..<rounds {
                        let answer = try? await service.lists.listAnswer(TenantQuery(product: .vb365), caller: admin, policy: AccessPolicy(), bypassCache: true)
                        let list = (try? JSONSerialization.jsonObject(with: Data(answer?.body ?? []))) as? [String: Any] ?? [:]
                        let data = list["data"] as? [[String: Any]] ?? []
                        let ids = Set(data.compactMap { ($0["source"] as? [String: Any])?["id"] as? String })
                        let sourceStatus = ((list["meta"] as? [String: Any])?["sources"] as? [[String: Any]])?.first?["status"] as? String
                        for (organization, index) in service.clients.organizationAccounts(of: "vb365-eu") where expected[organization] != index {
                            found.append("round \(round): organization \(organization) learned account index \(index)")
                        }
                        if !ids.isSubset(of: Set(expected.keys)) { found.append("round \(round): unexpected ids \(ids.sorted())") }
                        if !allowFailures && ids.count != 3 { found.append("round \(round): \(ids.count) organizations, not 3") }
                        if allowFailures, ids.count < 3, sourceStatus != "error" {
                            found.append("round \(round): \(ids.count) organizations but the source is \(sourceStatus ?? "missing")")
                        }
                    }
                    return found
                }
            }
            var all: [String] = []
            for await found in group { all.append(contentsOf: found) }
            return all
        }
    }

    @Test("every account index the fan-out learns is the account's own, over thousands of concurrent fan-outs")
    func indicesStayTrue() async throws {
        try await withSimulator(products: [.vb365]) { sim in
            try await withGateway(vb365: sim, vspc: nil, cache: "{ maxBytes: 0 }") { gw in
                let reads = { sim.state.counters(.vb365).requests["GET /v5/Organization"] ?? 0 }
                // One after another: every round is a fan-out of its own (the cache is off, and
                // concurrent rounds would share one fill).
                let sequential = await Self.fanOut(gw.service, workers: 1, rounds: 1500, allowFailures: false)
                #expect(sequential.count == 0, "\(sequential.count) problems, first: \(sequential.prefix(5))")
                #expect(reads() == 3 * 1500, "\(reads()) organization reads")
                // At once, as under load: lists coalesce into shared fills, and answers race.
                let concurrent = await Self.fanOut(gw.service, workers: 8, rounds: 100, allowFailures: false)
                #expect(concurrent.count == 0, "\(concurrent.count) problems, first: \(concurrent.prefix(5))")
                #expect(gw.service.clients.organizationAccounts(of: "vb365-eu") == Self.expected)

                // Failing accounts take the other branch of the fan-out (the account is logged by index).
                sim.state.setFaults(SimulatorFaults(errorRate: 0.3), for: .vb365)
                let failing = await Self.fanOut(gw.service, workers: 1, rounds: 500, allowFailures: true)
                #expect(failing.count == 0, "\(failing.count) problems, first: \(failing.prefix(5))")
                sim.state.setFaults(SimulatorFaults(), for: .vb365)

                // Single reads go by the learned index.
                for (organization, _) in Self.expected {
                    let location = try gw.service.reads.locate("vb365-eu." + organization)
                    try gw.service.reads.authorize(Self.admin, at: location, policy: AccessPolicy())
                    let tenant = try await gw.service.reads.tenantAnswer(at: location).tenant
                    #expect(tenant.source.id == organization)
                }
            }
        }
    }

    @Test("a VB365 upstream with more organization accounts than its gate and queue hold reads them all, never more at once than the gate lets through")
    func widerThanTheGate() async throws {
        try await withSimulator(generate: 12, products: [.vb365]) { sim in
            let directory = try makeTemporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            var extra = ""
            for n in 1...12 {
                let org = String(format: "%05d", n)
                try Data("Org-\(org)-Pass".utf8).write(to: URL(fileURLWithPath: "\(directory)/\(org).pw"))
                extra += "      - { username: backup@org-\(org).onmicrosoft.com, password: { file: \(directory)/\(org).pw } }\n"
            }
            // 15 accounts against a gate of 2 with a queue of 3.
            extra += "    maxConcurrentRequests: 2\n    maxQueuedRequests: 3\n"
            try await withGateway(vb365: sim, vspc: nil, cache: "{ maxBytes: 0 }", vb365Extra: extra) { gw in
                let answer = try await gw.get("/v1/tenants?limit=100")
                let list = try #require(try JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any])
                let source = try #require(((list["meta"] as? [String: Any])?["sources"] as? [[String: Any]])?.first)
                #expect(source["status"] as? String == "ok", "\(source)")
                #expect((list["data"] as? [Any])?.count == 15)
                #expect(!gw.logs.all.contains { $0.contains("is full") }, "the fan-out filled the gate's queue")
            }
        }
    }
}
