import Foundation
import GatewayAccess
import GatewayTestSupport
import HTTPTransport
import Logging
import SharedTier
import Synchronization
import Testing
import TokenBroker
import VeeamSimulator

/// Several replicas share their upstream sessions through a real
/// `redis-server`, so a Veeam server sees one login per account; Redis is never a new way to fail.
@Suite("End to end: replicas sharing upstream sessions through Redis", .serialized)
struct SharedTierTests {
    static let encryptionKey = "shared-tier-test-key-0123456789abcdef"

    func shared(_ redis: RunningRedis, _ secrets: String = "") -> String {
        "shared: { redis: { url: '\(redis.url)', keyPrefix: 'vgw-test:', encryptionKey: { env: VGW_TEST_SHARED_KEY } } }"
    }

    /// A client of the test Redis with the replicas' key prefix, for looking at what they wrote.
    func testClient(_ redis: RunningRedis) throws -> RedisClient {
        var settings = try RedisSettings.parse(redis.url).get()
        settings.keyPrefix = "vgw-test:"
        return RedisClient(settings: settings, logger: Logger(label: "test"))
    }

    /// Three in-process gateways (replicas) over one simulator and one Redis.
    func withReplicas(_ sim: RunningSimulator, _ redis: RunningRedis, cache: String = "", _ body: ([RunningGateway]) async throws -> Void) async throws {
        setenv("VGW_TEST_SHARED_KEY", Self.encryptionKey, 1)
        try await withGateway(vb365: sim, vspc: sim, cache: cache, extra: shared(redis)) { a in
            try await withGateway(vb365: sim, vspc: sim, cache: cache, extra: shared(redis)) { b in
                try await withGateway(vb365: sim, vspc: sim, cache: cache, extra: shared(redis)) { c in
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

    /// Resource reads of one tenant route (not logins, not lists) the simulator served.
    func tenantReads(_ sim: RunningSimulator, _ product: SimulatedProduct) -> Int {
        sim.state.counters(product).requests.filter { route, _ in
            product == .vspc ? route.contains("/tenants/") : route.hasSuffix("/Organization")
        }.values.reduce(0, +)
    }

    @Test("three replicas, 300 concurrent cold requests for one tenant, 300 ms upstream latency: exactly one tenant read in all (both products)")
    func oneFetchAcrossReplicas() async throws {
        try await withRedis { redis in
            try await withSimulator(faults: [.vb365: SimulatorFaults(latencyMs: 300), .vspc: SimulatorFaults(latencyMs: 300)]) { sim in
                try await withReplicas(sim, redis) { replicas in
                    for (path, product) in [(cloudTenantPath, SimulatedProduct.vspc), (organizationPath, .vb365)] {
                        let answers = try await withThrowingTaskGroup(of: Answer.self) { group in
                            for replica in replicas {
                                for _ in 0..<100 {
                                    group.addTask {
                                        let response = try await replica.get(path)
                                        return Answer(status: response.status, etag: response.header("etag") ?? "-", cache: response.header("x-cache") ?? "-")
                                    }
                                }
                            }
                            var all: [Answer] = []
                            for try await answer in group { all.append(answer) }
                            return all
                        }
                        #expect(answers.count == 300)
                        #expect(answers.allSatisfy { $0.status == 200 }, "\(Dictionary(grouping: answers, by: \.status).mapValues(\.count))")
                        // One fill for three replicas. A VSPC tenant is one request; a VB365
                        // organization read cold is one `GET /vN/Organization` per organization
                        // account (seed 000: each account sees only its own, and which one is this
                        // organization's is learned by reading), 3 here, 9 with three replicas alone.
                        let accounts = product == .vspc ? 1 : 3
                        #expect(tenantReads(sim, product) == accounts, "\(path): one fill for three replicas (\(sim.state.counters(product).requests))")
                        #expect(Set(answers.map(\.etag)).count == 1, "every replica answers the same bytes, so the same ETag")
                        #expect(sim.state.counters(product).logins == accounts, "only the replica that filled logged in, once per account")
                        try await Task.sleep(for: .seconds(2))  // the caller's rate (50/s, burst 100) refills
                    }
                    var hits = 0
                    var stores = 0
                    var waits = 0
                    for replica in replicas {
                        let tier = try #require(replica.service.sharedStatus?())
                        hits += tier.cache.hits
                        stores += tier.cache.stores
                        waits += tier.cache.lockWaits
                        #expect(tier.cache.fallbacks == 0)
                    }
                    #expect(stores == 2, "one fill per tenant, stored for every replica")
                    #expect(hits == 4, "the two other replicas took each tenant from Redis")
                    #expect(waits >= 4, "they waited for the filling replica (woken by pub/sub)")
                    var exported = 0
                    for replica in replicas {
                        let metrics = try await replica.get("/metrics").text
                        #expect(metrics.contains("veeam_gateway_shared_cache_lock_waits_total"))
                        let line = metrics.split(separator: "\n").first { $0.hasPrefix("veeam_gateway_shared_cache_hits_total ") }
                        exported += line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
                    }
                    #expect(exported == 4, "/metrics says the same")
                    var shown = 0
                    for replica in replicas {
                        let status = try await replica.json("/v1/status")
                        shown += ((status["sharedCache"] as? [String: Any])?["hits"] as? Int) ?? 0
                    }
                    #expect(shown == 4, "and /v1/status")
                }
            }
        }
    }

    struct Answer: Sendable {
        var status: Int
        var etag: String
        var cache: String
    }

    @Test("a replica that died holding a fill's claim holds the others up only until the claim lapses; a later fill is never overwritten by an older one")
    func deadHolderAndFence() async throws {
        try await withRedis { redis in
            try await withSimulator { sim in
                setenv("VGW_TEST_SHARED_KEY", Self.encryptionKey, 1)
                try await withGateway(vb365: sim, vspc: sim, extra: shared(redis)) { gw in
                    let client = try testClient(redis)
                    defer { client.shutdown() }
                    // The upstream's fingerprint in shared names, from another tenant's fill.
                    #expect(try await gw.get("/v1/tenants/vspc-main.0f8e7d6c-5b4a-4392-8170-6e5d4c3b2a19").status == 200)
                    guard case .array(let names) = try await client.command(["KEYS", "vgw-test:cache:{*|tenant|vspc-main.0f8e7d6c-5b4a-4392-8170-6e5d4c3b2a19}"]),
                        let found = names.first?.bytes
                    else { Issue.record("no shared value"); return }
                    let fingerprint = String(String(decoding: found, as: UTF8.self).dropFirst("vgw-test:cache:{".count).prefix { $0 != "|" })
                    // A replica that claimed this tenant's fill and died: its claim lives 1.5 s.
                    let key = "\(fingerprint)|tenant|vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4"
                    _ = try await client.command(["SET", "vgw-test:cache:{\(key)}:lock", "424242:dead", "PX", "1500"])
                    let readsBefore = tenantReads(sim, .vspc)
                    let answer = try await gw.get(cloudTenantPath)
                    #expect(answer.status == 200)
                    #expect(tenantReads(sim, .vspc) == readsBefore + 1)
                    let tier = try #require(gw.service.sharedStatus?())
                    #expect(tier.cache.lockWaits >= 1, "it waited for the dead holder")
                    #expect(tier.cache.misses == 2, "then claimed the fill itself when the claim lapsed (no fallback)")
                    #expect(tier.cache.fallbacks == 0)

                    // Fencing, on the level itself: claim 1 lapses, claim 2 stores, claim 1's late store is refused.
                    let level = RedisSharedCache(client: client, encryptionKey: Self.encryptionKey, notifier: FillNotifier(clock: .continuous), logger: Logger(label: "test"))
                    guard case .claimed(let first) = await level.lookup("fence-test", claimFor: .seconds(5), skipValue: false) else {
                        Issue.record("no claim"); return
                    }
                    guard case .busy = await level.lookup("fence-test", claimFor: .seconds(5), skipValue: false) else {
                        Issue.record("a held claim is not busy"); return
                    }
                    _ = try await client.command(["DEL", "vgw-test:cache:{fence-test}:lock"])  // it lapsed
                    guard case .claimed(let second) = await level.lookup("fence-test", claimFor: .seconds(5), skipValue: false) else {
                        Issue.record("no second claim"); return
                    }
                    #expect(second.fence > first.fence)
                    await level.store(Array("newer".utf8), ttl: .seconds(30), claim: second)
                    await level.store(Array("older".utf8), ttl: .seconds(30), claim: first)
                    guard case .found(let bytes, let age) = await level.lookup("fence-test", claimFor: .seconds(5), skipValue: false) else {
                        Issue.record("nothing stored"); return
                    }
                    #expect(bytes == Array("newer".utf8))
                    #expect(age < .seconds(5))
                    // At rest: sealed, and useless under another key.
                    let raw = try #require(try await client.command(["GET", "vgw-test:cache:{fence-test}"]).bytes)
                    #expect(!String(decoding: raw, as: UTF8.self).contains("newer"))
                    let stranger = RedisSharedCache(client: client, encryptionKey: "another-key-another-key-another-key", notifier: FillNotifier(clock: .continuous), logger: Logger(label: "test"))
                    guard case .unavailable = await stranger.lookup("fence-test", claimFor: .seconds(5), skipValue: false) else {
                        Issue.record("another key read the value"); return
                    }
                    // A fill that began before a purge does not land after it (the purge fences it).
                    guard case .claimed(let early) = await level.lookup("purge-test", claimFor: .seconds(5), skipValue: false) else {
                        Issue.record("no claim"); return
                    }
                    #expect(await level.purge(keys: ["purge-test"], prefixes: []))
                    await level.store(Array("read before the purge".utf8), ttl: .seconds(30), claim: early)
                    guard case .claimed(let late) = await level.lookup("purge-test", claimFor: .seconds(5), skipValue: false) else {
                        Issue.record("the early fill was stored after the purge"); return
                    }
                    // A claim given up (its fill failed): for a moment the others fill for themselves.
                    await level.release(late)
                    guard case .unavailable = await level.lookup("purge-test", claimFor: .seconds(5), skipValue: false) else {
                        Issue.record("a released claim did not send the waiters to their upstreams"); return
                    }
                    let cached = try #require(try await client.command(["GET", "vgw-test:cache:{\(key)}"]).bytes)
                    let text = String(decoding: cached, as: UTF8.self)
                    #expect(!text.contains("c386d34c"), "a cached tenant is sealed too")
                }
            }
        }
    }

    @Test("replicas that configure an upstream differently never take each other's values from the shared level")
    func differentConfigurationsDoNotShare() async throws {
        try await withRedis { redis in
            try await withSimulator { sim in
                setenv("VGW_TEST_SHARED_KEY", Self.encryptionKey, 1)
                try await withGateway(vb365: sim, vspc: sim, extra: shared(redis)) { a in
                    // B speaks another VSPC client version: what it reads may differ, so it is its own.
                    try await withGateway(vb365: sim, vspc: sim, extra: shared(redis), vspcExtra: "    clientVersion: '3.5'\n") { (b: RunningGateway) async throws -> Void in
                        #expect(try await a.get(cloudTenantPath).status == 200)
                        let before = tenantReads(sim, .vspc)
                        #expect(try await b.get(cloudTenantPath).status == 200)
                        #expect(tenantReads(sim, .vspc) == before + 1, "B read its upstream itself")
                        #expect(b.service.sharedStatus?().cache.hits == 0)
                        // The VB365 upstream is configured alike: B takes A's value.
                        #expect(try await a.get(organizationPath).status == 200)
                        let organizations = tenantReads(sim, .vb365)
                        #expect(try await b.get(organizationPath).status == 200)
                        #expect(tenantReads(sim, .vb365) == organizations)
                        #expect(b.service.sharedStatus?().cache.hits == 1)
                    }
                }
            }
        }
    }

    @Test("replicas whose vspc-main and vb365-eu are different servers never adopt each other's sessions")
    func sessionsCarryTheServer() async throws {
        try await withRedis { redis in
            try await withSimulator { first in
                try await withSimulator { second in
                    setenv("VGW_TEST_SHARED_KEY", Self.encryptionKey, 1)
                    try await withGateway(vb365: first, vspc: first, extra: shared(redis)) { a in
                        try await withGateway(vb365: second, vspc: second, extra: shared(redis)) { b in
                            #expect(try await a.get(cloudTenantPath).status == 200)
                            #expect(try await a.get(organizationPath).status == 200)
                            #expect(try await b.get(cloudTenantPath).status == 200)
                            #expect(try await b.get(organizationPath).status == 200)
                            for product in SimulatedProduct.allCases {
                                #expect(second.state.counters(product).unauthorized == 0, "\(product): B never sent A's token to its own server")
                                #expect(second.state.counters(product).logins >= 1, "\(product): B logged in to its own server")
                            }
                            let client = try testClient(redis)
                            defer { client.shutdown() }
                            guard case .array(let keys) = try await client.command(["KEYS", "vgw-test:session:vspc-main:*"]) else { Issue.record("no keys"); return }
                            #expect(keys.count == 2, "one session per server under one upstream name")
                        }
                    }
                }
            }
        }
    }

    @Test("a reload on one replica reaches the others: a replica whose file changed reloads it, one whose file did not stays")
    func reloadReachesEveryReplica() async throws {
        try await withRedis { redis in
            try await withSimulator { sim in
                try await withReplicas(sim, redis) { replicas in
                    let (a, b, c) = (replicas[0], replicas[1], replicas[2])
                    for replica in replicas { #expect(await eventually { replica.state.hearsPurges }) }
                    let newKey = "e2e-added-on-every-replica-0123456789"
                    for replica in [a, b] {
                        let original = try String(contentsOfFile: replica.configPath, encoding: .utf8)
                        let added = original.replacingOccurrences(
                            of: "callers:\n",
                            with: "callers:\n  - { id: added, keyHash: \"\(APIKey.hash(newKey))\", roles: [ServiceProviderAdministrator] }\n")
                        try Data(added.utf8).write(to: URL(fileURLWithPath: replica.configPath))
                    }
                    #expect(await a.state.reload())
                    #expect(await eventually { b.logs.all.contains { $0.contains("configuration reloaded") } })
                    #expect(try await b.get(cloudTenantPath, key: newKey).status == 200, "B reloaded its own changed file")
                    #expect(await eventually { c.logs.all.contains { $0.contains("file is unchanged") } })
                    #expect(try await c.get(cloudTenantPath, key: newKey).status == 401, "C's file did not change: it kept its configuration")
                    #expect(!c.logs.all.contains { $0.contains("configuration reloaded") })
                    #expect(!a.logs.all.contains { $0.contains("reload from another replica") }, "a replica ignores its own announcement")
                    #expect(!b.logs.all.contains { $0.contains("reload announced") }, "a reload another replica announced is not announced again")
                }
            }
        }
    }

    @Test("three fresh replicas, 100 concurrent callers each, 300 ms upstream latency: one login per account in all")
    func oneLoginPerAccount() async throws {
        try await withRedis { redis in
            try await withSimulator(faults: [.vb365: SimulatorFaults(latencyMs: 300), .vspc: SimulatorFaults(latencyMs: 300)]) { sim in
                // Nothing cached (TTL 0): every replica reads, so every replica needs the sessions.
                try await withReplicas(sim, redis, cache: "{ ttl: 0s, list: { ttl: 0s } }") { replicas in
                    let statuses = try await load(replicas, "/v1/tenants", count: 100)
                    #expect(statuses.count == 300)
                    #expect(statuses.allSatisfy { $0 == 200 }, "\(Dictionary(grouping: statuses, by: { $0 }).mapValues(\.count))")
                    #expect(sim.state.counters(.vb365).logins == 3, "one per organization account, not one per replica")
                    #expect(sim.state.counters(.vspc).logins == 1)
                    var shared = 0
                    for replica in replicas {
                        for upstream in ["vb365-eu", "vspc-main"] {
                            for broker in replica.service.clients.brokers(of: upstream) { shared += await broker.statistics.shared }
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
                    let client = try testClient(redis)
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
                    let wrongKey = RedisSharedSessions(client: client, encryptionKey: "another-key-another-key-another-key", notifier: FillNotifier(clock: .continuous), logger: Logger(label: "test"))
                    let right = RedisSharedSessions(client: client, encryptionKey: Self.encryptionKey, notifier: FillNotifier(clock: .continuous), logger: Logger(label: "test"))
                    // The server part of the name is the replicas' digest of vspc-main's base URL.
                    let sessionName = try #require(names.first { $0.hasPrefix("vgw-test:session:vspc-main:") })
                    let server = String(sessionName.split(separator: ":")[3])
                    let account = SharedAccount(upstream: "vspc-main", username: "gateway-svc", server: server)
                    #expect(await wrongKey.load(account) == nil)
                    let opened = await right.load(account)
                    #expect(opened != nil)
                    #expect(sim.state.issuedTokens.contains(opened?.access.value ?? "-"))
                }
            }
        }
    }

    @Test("a token grant whose expires_in is Int64.max, 1e300, negative or a string: replicas start, serve both products, share sessions of at most 24 h",
        arguments: ["9223372036854775807", "1e300", "-5", "soon"])
    func misstatedTokenLifetimes(expiresIn: String) async throws {
        try await withRedis { redis in
            try await withSimulator { sim in
                for product in SimulatedProduct.allCases {
                    var faults = SimulatorFaults()
                    faults.expiresIn = expiresIn
                    sim.state.setFaults(faults, for: product)
                }
                try await withReplicas(sim, redis) { replicas in
                    for replica in replicas {
                        #expect(try await replica.get(cloudTenantPath).status == 200, "VSPC, expires_in \(expiresIn)")
                        #expect(try await replica.get(organizationPath, key: TestKeys.abcApp).status == 200, "VB365, expires_in \(expiresIn)")
                    }
                    let client = try testClient(redis)
                    defer { client.shutdown() }
                    guard case .array(let keys) = try await client.command(["KEYS", "vgw-test:session:*"]) else { Issue.record("no keys"); return }
                    for key in keys.compactMap(\.bytes) {
                        guard case .integer(let left) = try await client.command([Array("PTTL".utf8), key]) else { continue }
                        #expect(left > 0 && left <= 86_400_000, "a shared session lives at most 24 h (\(left) ms)")
                    }
                }
            }
        }
    }

    @Test("a refused login on one replica answers the replicas waiting for it at once, and the wrong password is sent once")
    func failedLoginWakesWaiters() async throws {
        try await withRedis { redis in
            try await withSimulator { sim in
                setenv("VGW_TEST_SHARED_KEY", Self.encryptionKey, 1)
                // The login takes 800 ms: the replicas that ask meanwhile wait on the lock.
                sim.state.setFaults(SimulatorFaults(latencyMs: 800), for: .vspc)
                try await withGateway(vb365: sim, vspc: sim, vspcPassword: "wrong.pw", extra: shared(redis)) { a in
                    try await withGateway(vb365: sim, vspc: sim, vspcPassword: "wrong.pw", extra: shared(redis)) { b in
                        try await withGateway(vb365: sim, vspc: sim, vspcPassword: "wrong.pw", extra: shared(redis)) { c in
                            sim.state.resetCounters()
                            let started = ContinuousClock.now
                            let answers = try await withThrowingTaskGroup(of: TimedAnswer.self) { group in
                                for (index, replica) in [a, b, c].enumerated() {
                                    group.addTask {
                                        // The first replica asks first, the others while it logs in.
                                        try await Task.sleep(for: .milliseconds(index * 200))
                                        let response = try await replica.get(cloudTenantPath)
                                        return TimedAnswer(status: response.status, at: ContinuousClock.now - started)
                                    }
                                }
                                var answers: [TimedAnswer] = []
                                for try await answer in group { answers.append(answer) }
                                return answers.sorted { $0.at < $1.at }
                            }
                            #expect(answers.allSatisfy { $0.status == 502 || $0.status == 503 }, "\(answers.map(\.status))")
                            let first = try #require(answers.first).at
                            let last = try #require(answers.last).at
                            #expect(last - first < .milliseconds(200), "the waiters answered within 200 ms of the refusal: \(answers.map(\.at))")
                            #expect(sim.state.counters(.vspc).loginFailures == 1, "the wrong password was sent once, not once per replica")
                        }
                    }
                }
            }
        }
    }

    @Test("the release script gets the keys and arguments it reads: a session unlock deletes the lock and publishes (real redis-server)")
    func releaseArity() async throws {
        try await withRedis { redis in
            let client = try testClient(redis)
            defer { client.shutdown() }
            let notifier = FillNotifier(clock: .continuous)
            let sessions = RedisSharedSessions(client: client, encryptionKey: Self.encryptionKey, notifier: notifier, logger: Logger(label: "test"))
            let account = SharedAccount(upstream: "vspc-main", username: "gateway-svc")
            guard case .acquired(let lock) = await sessions.lock(account) else { Issue.record("no lock"); return }
            guard case .heldElsewhere = await sessions.lock(account) else { Issue.record("a held lock was taken twice"); return }
            let subscriber = RedisSubscriber(settings: client.settings, channels: [sessions.channel], logger: Logger(label: "test")) { _, payload in
                notifier.notify(String(decoding: payload, as: UTF8.self))
            }
            defer { subscriber.stop() }
            #expect(await eventually { subscriber.isListening })
            let asked = ContinuousClock.now
            #expect(await sessions.release(lock, loginRejected: true), "Redis ran the script (no ERR about its arguments)")
            let waited = ContinuousClock.now
            await sessions.waitForChange(account, since: asked, timeout: .seconds(3))
            #expect(ContinuousClock.now - waited < .seconds(1), "the release was published: the wait ended at once")
            guard case .rejectedElsewhere = await sessions.lock(account) else { Issue.record("a refused login leaves its mark"); return }
            // A fill claim's release goes through the same script.
            let cache = RedisSharedCache(client: client, encryptionKey: Self.encryptionKey, notifier: notifier, logger: Logger(label: "test"))
            guard case .claimed(let claim) = await cache.lookup("arity-test", claimFor: .seconds(5), skipValue: false) else { Issue.record("no claim"); return }
            await cache.release(claim)
            let after = await cache.lookup("arity-test", claimFor: .seconds(5), skipValue: false)
            guard case .unavailable = after else { Issue.record("released with its skip mark: \(after)"); return }
        }
    }

    @Test("purge and reload messages are acted on only when signed, recent and new: forged, stale and replayed ones are ignored and counted")
    func signedMessages() async throws {
        try await withRedis { redis in
            try await withSimulator { sim in
                try await withReplicas(sim, redis) { replicas in
                    let (a, b) = (replicas[0], replicas[1])
                    #expect(try await b.get(cloudTenantPath).status == 200)
                    #expect(try await b.get(cloudTenantPath).header("x-cache") == "HIT")
                    #expect(await eventually { b.state.hearsPurges })
                    let client = try testClient(redis)
                    defer { client.shutdown() }
                    // What a replica sends, captured as anyone subscribed to the channel sees it.
                    let captured = Mutex<[[UInt8]]>([])
                    let spy = RedisSubscriber(settings: client.settings, channels: ["vgw-test:purge"], logger: Logger(label: "test")) { _, payload in
                        captured.withLock { $0.append(payload) }
                    }
                    defer { spy.stop() }
                    #expect(await eventually { spy.isListening })

                    // Forged: the JSON a replica would send, unsigned, from anyone who can PUBLISH.
                    let forged = #"{"origin":"attacker","upstream":null,"tenant":null}"#
                    _ = try await client.command(["PUBLISH", "vgw-test:purge", forged])
                    #expect(await eventually { b.service.sharedStatus?().ignoredMessages["unsigned"] == 1 })
                    #expect(try await b.get(cloudTenantPath).header("x-cache") == "HIT", "a forged purge purges nothing")

                    // A real purge from A: B acts on it. The same bytes again: a replay, ignored.
                    #expect(try await a.send(.delete, "/v1/cache?tenant=vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4").status == 200)
                    #expect(await eventually { b.logs.all.contains { $0.contains("purge from another replica") } })
                    #expect(try await b.get(cloudTenantPath).header("x-cache") == "MISS")
                    #expect(try await b.get(cloudTenantPath).header("x-cache") == "HIT")
                    let isSigned = { (message: [UInt8]) in message.starts(with: Array("v1.".utf8)) }
                    #expect(await eventually { captured.withLock { $0.contains(where: isSigned) } })
                    let signed = try #require(captured.withLock { $0.first(where: isSigned) })
                    _ = try await client.command([Array("PUBLISH".utf8), Array("vgw-test:purge".utf8), signed])
                    #expect(await eventually { b.service.sharedStatus?().ignoredMessages["replayed"] == 1 })
                    #expect(try await b.get(cloudTenantPath).header("x-cache") == "HIT", "a replayed purge purges nothing")
                    let metrics = try await b.get("/metrics", key: nil).text
                    let counted = metrics.split(separator: "\n").filter { $0.hasPrefix("veeam_gateway_shared_tier_messages_ignored_total") }
                    #expect(counted.contains { $0.contains(#"reason="unsigned""#) && $0.hasSuffix(" 1") }, "counted in /metrics: \(counted)")
                    #expect(counted.contains { $0.contains(#"reason="replayed""#) && $0.hasSuffix(" 1") }, "counted in /metrics: \(counted)")
                }
            }
        }
    }

    @Test("a replica whose Redis connections stop forwarding without closing reconnects within three heartbeats, and purges reach it again")
    func silentSubscriptionReconnects() async throws {
        try await withRedis { redis in
            try await withSimulator { sim in
                setenv("VGW_TEST_SHARED_KEY", Self.encryptionKey, 1)
                let relay = try StallingRelay(to: redis.port)
                defer { relay.close() }
                let viaRelay = "shared: { redis: { url: 'redis://127.0.0.1:\(relay.port)', keyPrefix: 'vgw-test:', heartbeat: 300ms, encryptionKey: { env: VGW_TEST_SHARED_KEY } } }"
                try await withGateway(vb365: sim, vspc: sim, extra: shared(redis)) { a in
                    try await withGateway(vb365: sim, vspc: sim, extra: viaRelay) { b in
                        #expect(await eventually { b.state.hearsPurges })
                        #expect(try await b.get(cloudTenantPath).status == 200)
                        #expect(try await b.get(cloudTenantPath).header("x-cache") == "HIT")
                        relay.stall()
                        let stalled = ContinuousClock.now
                        // Purges sent meanwhile, one every 200 ms: one must reach B over its new subscription.
                        var reached = false
                        while !reached, ContinuousClock.now - stalled < .seconds(10) {
                            _ = try await a.send(.delete, "/v1/cache?tenant=vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4")
                            try await Task.sleep(for: .milliseconds(200))
                            reached = b.logs.all.contains { $0.contains("purge from another replica") }
                        }
                        #expect(reached, "a purge reached B within 10 s of its connections going silent (heartbeat 300 ms)")
                        #expect(b.logs.all.contains { $0.contains("subscription lost or silent; reconnecting") })
                        #expect(try await b.get(cloudTenantPath).status == 200)
                    }
                }
            }
        }
    }

    @Test("a signed message outside the 30 s window is refused as stale; one signed under another key as unsigned")
    func staleAndForeignMessages() {
        let past = SignedMessages(secret: Self.encryptionKey, now: { Date().addingTimeInterval(-120) })
        let here = SignedMessages(secret: Self.encryptionKey)
        let foreign = SignedMessages(secret: "another-key-another-key-another-key")
        let payload = Array(#"{"origin":"x"}"#.utf8)
        #expect(here.open(past.sign(payload, channel: "p"), channel: "p") == nil)
        #expect(here.open(foreign.sign(payload, channel: "p"), channel: "p") == nil)
        #expect(here.open(here.sign(payload, channel: "p"), channel: "other") == nil, "bound to its channel")
        #expect(here.open(here.sign(payload, channel: "p"), channel: "p") == payload)
        #expect(here.ignored == [.stale: 1, .unsigned: 2])
    }

    @Test("a shared value rewritten with a longer expiry after its sealed lifetime is refused, not served (real redis-server)")
    func rewrittenValueRefused() async throws {
        try await withRedis { redis in
            let client = try testClient(redis)
            defer { client.shutdown() }
            let cache = RedisSharedCache(client: client, encryptionKey: Self.encryptionKey, notifier: FillNotifier(clock: .continuous), logger: Logger(label: "test"))
            guard case .claimed(let claim) = await cache.lookup("pin-test", claimFor: .seconds(5), skipValue: false) else { Issue.record("no claim"); return }
            await cache.store(Array("old answer".utf8), ttl: .milliseconds(300), claim: claim)
            guard case .found(let bytes, _) = await cache.lookup("pin-test", claimFor: .seconds(5), skipValue: false) else { Issue.record("not stored"); return }
            #expect(bytes == Array("old answer".utf8))
            let name = "vgw-test:cache:{pin-test}"
            let sealed = try #require(try await client.command(["GET", name]).bytes)
            // Past its TTL and the allowed clock skew, someone sets the old value again for an hour.
            try await Task.sleep(for: .milliseconds(5_500))
            _ = try await client.command([Array("SET".utf8), Array(name.utf8), sealed, Array("PX".utf8), Array("3600000".utf8)])
            let after = await cache.lookup("pin-test", claimFor: .seconds(5), skipValue: false)
            if case .found = after { Issue.record("a stale value was pinned by rewriting its expiry") }
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
                    let before = tenantReads(sim, .vspc)
                    #expect(try await b.get(cloudTenantPath).header("x-cache") == "MISS")
                    #expect(tenantReads(sim, .vspc) == before + 1, "the shared level was purged too: B read the upstream, not Redis's old copy")
                    #expect(try await a.get(cloudTenantPath).header("x-cache") == "MISS")
                    #expect(tenantReads(sim, .vspc) == before + 1, "A took what B stored in the shared level")
                    #expect(!a.logs.all.contains { $0.contains("purge from another replica") }, "a replica ignores its own purges")
                }
            }
        }
    }

    @Test("pass-through answers are shared: what replica A read, B answers without asking VSPC; a purge of the upstream on A empties the shared level for both")
    func passThroughShared() async throws {
        try await withRedis { redis in
            try await withSimulator { sim in
                try await withReplicas(sim, redis) { replicas in
                    let (a, b) = (replicas[0], replicas[1])
                    let path = "/v1/upstreams/vspc-main/api/infrastructure/sites/tenants?limit=3"
                    let first = try await a.get(path)
                    #expect(first.status == 200 && first.header("x-cache") == "MISS")
                    let reads = sim.state.counters(.vspc).resourceRequests
                    let fromShared = try await b.get(path)
                    #expect(fromShared.status == 200)
                    #expect(fromShared.body == first.body)
                    #expect(fromShared.header("etag") == first.header("etag"), "the same bytes, the same ETag on every replica")
                    #expect(sim.state.counters(.vspc).resourceRequests == reads, "B took A's answer from the shared level")
                    #expect(await eventually { b.state.hearsPurges })
                    let purge = try await a.send(.delete, "/v1/cache?upstream=vspc-main")
                    #expect(purge.status == 200)
                    #expect(await eventually { b.logs.all.contains { $0.contains("purge from another replica") } })
                    #expect(try await b.get(path).header("x-cache") == "MISS")
                    #expect(sim.state.counters(.vspc).resourceRequests == reads + 1, "the shared level was purged: B read VSPC again")
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
                    var fallbacks = 0
                    for replica in replicas { fallbacks += replica.service.sharedStatus?().cache.fallbacks ?? 0 }
                    #expect(fallbacks > 0, "fills went to the upstream while the shared level was gone")
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

/// An answer and when it came (a named struct across the task boundary, never a tuple).
struct TimedAnswer: Sendable {
    var status: Int
    var at: Duration
}
