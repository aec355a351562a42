import Foundation
import GatewayTestSupport
import HTTPTransport
import Logging
import SharedTier
import Testing
import TokenBroker
import VeeamSimulator

/// Issue 15 (first part): several replicas share their upstream sessions through a real
/// `redis-server`, so a Veeam server sees one login per account; Redis is never a new way to fail.
@Suite("End to end: replicas sharing upstream sessions through Redis", .serialized)
struct SharedTierTests {
    static let encryptionKey = "shared-tier-test-key-0123456789abcdef"

    func shared(_ redis: RunningRedis, _ secrets: String = "") -> String {
        "shared: { redis: { url: '\(redis.url)', keyPrefix: 'vgw-test:', encryptionKey: { env: VGW_TEST_SHARED_KEY } } }"
    }

    /// Three in-process gateways (replicas) over one simulator and one Redis.
    func withReplicas(_ sim: RunningSimulator, _ redis: RunningRedis, _ body: ([RunningGateway]) async throws -> Void) async throws {
        setenv("VGW_TEST_SHARED_KEY", Self.encryptionKey, 1)
        try await withGateway(vb365: sim, vspc: sim, extra: shared(redis)) { a in
            try await withGateway(vb365: sim, vspc: sim, extra: shared(redis)) { b in
                try await withGateway(vb365: sim, vspc: sim, extra: shared(redis)) { c in
                    try await body([a, b, c])
                }
            }
        }
    }

    /// `count` concurrent reads of `path` on each replica; every status.
    func load(_ replicas: [RunningGateway], _ path: String, count: Int) async throws -> [Int] {
        try await withThrowingTaskGroup(of: Int.self) { group in
            for replica in replicas {
                for _ in 0..<count { group.addTask { try await replica.get(path).status } }
            }
            var statuses: [Int] = []
            for try await status in group { statuses.append(status) }
            return statuses
        }
    }

    @Test("three fresh replicas, 100 concurrent callers each, 300 ms upstream latency: one login per account in all")
    func oneLoginPerAccount() async throws {
        try await withRedis { redis in
            try await withSimulator(faults: [.vb365: SimulatorFaults(latencyMs: 300), .vspc: SimulatorFaults(latencyMs: 300)]) { sim in
                try await withReplicas(sim, redis) { replicas in
                    let statuses = try await load(replicas, "/v1/tenants", count: 100)
                    #expect(statuses.count == 300)
                    #expect(statuses.allSatisfy { $0 == 200 }, "\(Dictionary(grouping: statuses, by: { $0 }).mapValues(\.count))")
                    #expect(sim.state.counters(.vb365).logins == 3, "one per organization account, not one per replica")
                    #expect(sim.state.counters(.vspc).logins == 1)
                    var shared = 0
                    for replica in replicas {
                        for upstream in ["vb365-eu", "vspc-main"] {
                            for broker in replica.service.brokers(of: upstream) { shared += await broker.statistics.shared }
                        }
                    }
                    #expect(shared == 8, "two replicas of three took each of the four sessions from Redis")
                }
            }
        }
    }

    @Test("what Redis holds is useless without the key: no token or password in it, and another key opens nothing")
    func encryptedAtRest() async throws {
        try await withRedis { redis in
            try await withSimulator { sim in
                try await withReplicas(sim, redis) { replicas in
                    #expect(try await load(replicas, "/v1/tenants", count: 2).allSatisfy { $0 == 200 })
                    var settings = try RedisSettings.parse(redis.url).get()
                    settings.keyPrefix = "vgw-test:"
                    let client = RedisClient(settings: settings, logger: Logger(label: "test"))
                    defer { client.shutdown() }
                    guard case .array(let keys) = try await client.command(["KEYS", "vgw-test:*"]) else { Issue.record("no keys"); return }
                    let names = keys.compactMap { $0.bytes.map { String(decoding: $0, as: UTF8.self) } }
                    #expect(names.filter { $0.hasPrefix("vgw-test:session:") }.count == 4, "\(names)")
                    #expect(!names.contains { $0.contains("@") }, "account names are hashed in key names")
                    for name in names where name.hasPrefix("vgw-test:session:") {
                        let value = try #require(try await client.command(["GET", name]).bytes)
                        let text = String(decoding: value, as: UTF8.self)
                        for secret in sim.state.issuedTokens + secretValues { #expect(!text.contains(secret)) }
                        let ttl = try await client.command(["PTTL", name])
                        #expect(ttl != .integer(-1), "it expires with the session")
                    }
                    let wrongKey = RedisSharedSessions(client: client, encryptionKey: "another-key-another-key-another-key", logger: Logger(label: "test"))
                    let right = RedisSharedSessions(client: client, encryptionKey: Self.encryptionKey, logger: Logger(label: "test"))
                    let account = SharedAccount(upstream: "vspc-main", username: "gateway-svc")
                    #expect(await wrongKey.load(account) == nil)
                    let opened = await right.load(account)
                    #expect(opened != nil)
                    #expect(sim.state.issuedTokens.contains(opened?.access.value ?? "-"))
                }
            }
        }
    }

    @Test("a purge on replica A reaches replica B through Redis: B answers MISS next")
    func purgeReachesEveryReplica() async throws {
        try await withRedis { redis in
            try await withSimulator { sim in
                try await withReplicas(sim, redis) { replicas in
                    let (a, b) = (replicas[0], replicas[1])
                    for replica in [a, b] {
                        #expect(try await replica.get(cloudTenantPath).status == 200)
                        #expect(try await replica.get(cloudTenantPath).header("x-cache") == "HIT")
                    }
                    #expect(await eventually { b.state.hearsPurges })
                    let purge = try await a.send(.delete, "/v1/cache?tenant=vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4")
                    #expect(purge.status == 200)
                    #expect(purge.text.contains(#""replicas":"told""#), "\(purge.text)")
                    #expect(await eventually { b.logs.all.contains { $0.contains("purge from another replica") } })
                    #expect(try await b.get(cloudTenantPath).header("x-cache") == "MISS")
                    #expect(try await a.get(cloudTenantPath).header("x-cache") == "MISS")
                    #expect(!a.logs.all.contains { $0.contains("purge from another replica") }, "a replica ignores its own purges")
                }
            }
        }
    }

    @Test("Redis killed during a load run: no caller's request fails, sessions are refreshed locally; back, the tier resumes")
    func redisKilled() async throws {
        try await withRedis { redis in
            try await withSimulator(tokenLifetime: .seconds(4)) { sim in
                try await withReplicas(sim, redis) { replicas in
                    #expect(try await load(replicas, cloudTenantPath, count: 5).allSatisfy { $0 == 200 })
                    var statuses: [Int] = []
                    let started = ContinuousClock.now
                    var killed = false
                    // Bypassing the cache (an administrator's no-cache): every request reads upstream,
                    // with tokens of 4 s that must be refreshed while Redis is gone.
                    while ContinuousClock.now - started < .seconds(6) {
                        if !killed, ContinuousClock.now - started > .seconds(1) {
                            redis.kill()
                            killed = true
                        }
                        let round = try await withThrowingTaskGroup(of: Int.self) { group in
                            for replica in replicas {
                                for _ in 0..<5 {
                                    group.addTask { try await replica.get(cloudTenantPath, headers: [("Cache-Control", "no-cache")]).status }
                                }
                            }
                            var all: [Int] = []
                            for try await status in group { all.append(status) }
                            return all
                        }
                        statuses += round
                        try await Task.sleep(for: .milliseconds(100))  // within the caller's rate (50/s)
                    }
                    #expect(statuses.count > 100)
                    let vspc = sim.state.counters(.vspc)
                    #expect(vspc.refreshes + vspc.logins > 3, "sessions were renewed while Redis was gone (refreshes \(vspc.refreshes), logins \(vspc.logins))")
                    #expect(statuses.allSatisfy { $0 == 200 }, "\(Dictionary(grouping: statuses, by: { $0 }).mapValues(\.count))")
                    // Ready all along; the status page says where the tier is.
                    #expect(try await replicas[0].get("/readyz").status == 200)
                    let down = try await replicas[0].json("/v1/status")
                    #expect((down["sharedTier"] as? String)?.hasSuffix(": open") == true, "\(down["sharedTier"] ?? "-")")
                    #expect((try await replicas[0].json("/readyz")["sharedTier"] as? String)?.hasSuffix(": open") == true)
                    let metrics = try await replicas[0].get("/metrics").text
                    #expect(metrics.contains(#"veeam_gateway_shared_tier_state{state="open"} 1"#), "\(metrics.split(separator: "\n").filter { $0.contains("shared_tier") })")
                    #expect(metrics.contains("veeam_gateway_shared_tier_fallbacks_total"))
                    try await redis.start()
                    try await Task.sleep(for: .seconds(2.2))  // the circuit's open period
                    #expect(try await load(replicas, cloudTenantPath, count: 3).allSatisfy { $0 == 200 })
                    let state = replicas[0].state.sharedTier?.client.breaker
                    _ = try await replicas[0].state.sharedTier?.client.command(["PING"])
                    #expect(state?.state == .closed)
                }
            }
        }
    }
}
