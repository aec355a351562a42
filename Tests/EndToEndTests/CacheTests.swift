import CurlHTTP
import HTTPTransport
import Foundation
import GatewayTestSupport
import Testing
import VeeamSimulator

@Suite("End to end: the response cache in the read path", .serialized)
struct CacheTests {
    @Test("a second read is a HIT with no upstream call; ETag, Age, Cache-Control; If-None-Match gives 304")
    func hitAndETag() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let first = try await gw.get(cloudTenantPath)
                #expect(first.status == 200)
                #expect(first.header("x-cache") == "MISS")
                let etag = try #require(first.header("etag"))
                #expect(first.header("cache-control")?.hasPrefix("private, max-age=") == true)
                let before = sim.state.counters(.vspc).resourceRequests
                let second = try await gw.get(cloudTenantPath)
                #expect(second.header("x-cache") == "HIT")
                #expect(second.header("etag") == etag)
                #expect(second.header("age") != nil)
                #expect(second.body == first.body)
                #expect(sim.state.counters(.vspc).resourceRequests == before)
                let notModified = try await gw.get(cloudTenantPath, headers: [("If-None-Match", etag)])
                #expect(notModified.status == 304)
                #expect(notModified.body.isEmpty)
                #expect(notModified.header("etag") == etag)
                let changed = try await gw.get(cloudTenantPath, headers: [("If-None-Match", "\"other\"")])
                #expect(changed.status == 200)

                let list1 = try await gw.get("/v1/tenants")
                let list2 = try await gw.get("/v1/tenants", headers: [("If-None-Match", list1.header("etag") ?? "")])
                #expect(list2.status == 304)
                #expect(list2.header("x-cache") == "HIT")
            }
        }
    }

    @Test("a forbidden caller gets 403 even when the entry is hot; a scoped caller gets 404")
    func forbiddenWhenHot() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                #expect(try await gw.get(cloudTenantPath).status == 200)
                #expect(try await gw.get(cloudTenantPath).header("x-cache") == "HIT")
                let refused = try await gw.get(cloudTenantPath, key: TestKeys.companyOwner)
                #expect(refused.status == 403)
                #expect(refused.header("etag") == nil)
                #expect(!refused.text.contains("Alpha"))
                #expect(try await gw.get(cloudTenantPath, key: TestKeys.abcApp).status == 404)
                // The hot list is filtered per caller.
                let ownerList = try await gw.json("/v1/tenants", key: TestKeys.companyOwner)
                #expect((ownerList["data"] as? [Any])?.isEmpty == true)
            }
        }
    }

    @Test("stale-if-error: the simulator down or answering 520 gives the stale entry, source marked stale")
    func staleIfError() async throws {
        try await withSimulator(products: [.vb365]) { vb in
            try await withSimulator(products: [.vspc]) { vspc in
                try await withGateway(vb365: vb, vspc: vspc, cache: "{ ttl: 1s, staleWhileRevalidate: 0s, staleIfError: 10m }") { gw in
                    #expect(try await gw.get(cloudTenantPath).status == 200)
                    _ = try await gw.get("/v1/tenants")
                    gw.clock.advance(by: .seconds(2))  // past the 1 s TTL
                    vspc.state.setFaults(SimulatorFaults(errorRate: 1), for: .vspc)
                    let during520 = try await gw.get(cloudTenantPath)
                    #expect(during520.status == 200)
                    #expect(during520.header("x-cache") == "STALE")
                    await vspc.stop()
                    let down = try await gw.json("/v1/tenants")
                    #expect((down["data"] as? [Any])?.count == 6)
                    let sources = try #require((down["meta"] as? [String: Any])?["sources"] as? [[String: Any]])
                    let source = try #require(sources.first { $0["upstream"] as? String == "vspc-main" })
                    #expect(source["status"] as? String == "stale")
                    #expect((source["problem"] as? [String: Any])?["code"] as? String == "upstream.connect")
                }
            }
        }
    }

    @Test("a 429 with retryAfter: the upstream is not called again before it passes; stale is served meanwhile")
    func throttled() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim, cache: "{ ttl: 1s, staleWhileRevalidate: 0s, staleIfError: 10m }") { gw in
                #expect(try await gw.get(cloudTenantPath).status == 200)
                gw.clock.advance(by: .seconds(2))
                sim.state.setFaults(SimulatorFaults(throttleRate: 1, retryAfterSeconds: 30), for: .vspc)
                let first = try await gw.get(cloudTenantPath)
                #expect(first.status == 200)
                #expect(first.header("x-cache") == "STALE")
                let calls = sim.state.counters(.vspc).resourceRequests
                for _ in 0..<5 { #expect(try await gw.get(cloudTenantPath).header("x-cache") == "STALE") }
                #expect(sim.state.counters(.vspc).resourceRequests == calls, "no call while retryAfter runs")
                // Without a stale entry the caller gets 503 with Retry-After.
                let other = try await gw.get("/v1/tenants/vspc-main.0f8e7d6c-5b4a-4392-8170-6e5d4c3b2a19")
                #expect(other.status == 503)
                #expect(Int(other.header("retry-after") ?? "") ?? 0 >= 1)
            }
        }
    }

    @Test("stale-while-revalidate through the gateway: stale at once, one refresh, then the fresh entry")
    func staleWhileRevalidate() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim, cache: "{ ttl: 30s, staleWhileRevalidate: 60s }") { gw in
                _ = try await gw.get(cloudTenantPath)
                let reads = { sim.state.counters(.vspc).requests["GET /api/v3/infrastructure/sites/tenants/{tenantUid}"] ?? 0 }
                #expect(reads() == 1)
                gw.clock.advance(by: .seconds(45))
                sim.state.setFaults(SimulatorFaults(latencyMs: 300), for: .vspc)  // the refresh takes a while
                let states = try await withThrowingTaskGroup(of: String?.self) { group in
                    for _ in 0..<10 { group.addTask { try await gw.get(cloudTenantPath).header("x-cache") } }
                    var all: [String?] = []
                    for try await state in group { all.append(state) }
                    return all
                }
                #expect(states.allSatisfy { $0 == "STALE" }, "answered at once from the stale entry")
                await gw.service.reads.settleCache()
                #expect(gw.service.reads.cacheStatistics.fills == 2)
                #expect(try await gw.get(cloudTenantPath).header("x-cache") == "HIT")
                #expect(reads() == 2, "exactly one background refresh")
            }
        }
    }

    @Test("no-cache from an administrator bypasses and refreshes; from others it is ignored; DELETE /v1/cache purges")
    func bypassAndPurge() async throws {
        try await withSimulator { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                _ = try await gw.get(cloudTenantPath)
                let ignored = try await gw.get(cloudTenantPath, key: TestKeys.spAdmin, headers: [("Cache-Control", "no-cache")])
                #expect(ignored.header("x-cache") == "HIT")
                let bypassed = try await gw.get(cloudTenantPath, headers: [("Cache-Control", "no-cache")])
                #expect(bypassed.header("x-cache") == "BYPASS")
                #expect(try await gw.send(.delete, "/v1/cache", key: TestKeys.spAdmin).status == 403)
                let purge = try await gw.send(.delete, "/v1/cache?tenant=vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4")
                #expect(purge.status == 200)
                #expect(purge.text.contains("\"purged\":1"))
                #expect(try await gw.get(cloudTenantPath).header("x-cache") == "MISS")
                _ = try await gw.get(organizationPath)
                #expect(try await gw.send(.delete, "/v1/cache?upstream=vb365-eu").text.contains("\"purged\":1"))
                #expect(try await gw.send(.delete, "/v1/cache").status == 200)
                #expect(try await gw.get(cloudTenantPath).header("x-cache") == "MISS")
                #expect(try await gw.send(.delete, "/v1/cache?tenant=../../etc").status == 400)
            }
        }
    }

    @Test("1,000 concurrent cold requests for one tenant make exactly 1 upstream request")
    func coalesced() async throws {
        try await withSimulator(faults: [.vspc: SimulatorFaults(latencyMs: 500)]) { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                _ = try await gw.get("/readyz", key: nil)  // log in first: count tenant reads only
                // 200 connections from the caller, so hundreds of requests reach the gateway while the fill runs.
                let caller = try CurlClient(configuration: .init(maxConnectionsPerHost: 200, maxIdleConnections: 200))
                let request = UpstreamRequest(url: gw.baseURL + cloudTenantPath, headers: [("X-API-Key", TestKeys.bulk)])
                let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<1000 { group.addTask { try await caller.perform(request, options: TransferOptions(totalTimeout: .seconds(60))).status } }
                    var all: [Int] = []
                    for try await status in group { all.append(status) }
                    return all
                }
                await caller.shutdown()
                #expect(statuses.count == 1000)
                #expect(statuses.allSatisfy { $0 == 200 })
                #expect(sim.state.counters(.vspc).requests["GET /api/v3/infrastructure/sites/tenants/{tenantUid}"] == 1)
            }
        }
    }
}
