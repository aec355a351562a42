import ChangeFeed
import CurlHTTP
import Foundation
import GatewayRuntime
import GatewayTestSupport
import HTTPTransport
import Logging
import Testing
import VeeamSimulator

/// The change feed across three replicas sharing a real `redis-server`: one watcher per upstream
/// (leases), one stream of events any replica serves, a replica taking over from the dead one
/// without a gap, and a feed that says it is each replica's own when Redis is away.
@Suite("End to end: the change feed shared by replicas through Redis", .serialized)
struct SharedFeedTests {
    static let events = "events: { pollInterval: 1h, activityInterval: 0s, maxWait: 10s }"

    func extra(_ redis: RunningRedis, webhook: String = "") -> String {
        SharedTierTests().shared(redis) + "\n" + Self.events + webhook
    }

    static func watcher(_ gw: RunningGateway) -> FeedWatcher {
        FeedWatcher(source: gw.state.source, log: gw.state.feedLog, coordination: gw.state.feedCoordination, logger: Logger(label: "feed-test"))
    }

    func withReplicas(_ sim: RunningSimulator, _ redis: RunningRedis, webhook: String = "", _ body: ([RunningGateway]) async throws -> Void) async throws {
        setenv("VGW_TEST_SHARED_KEY", SharedTierTests.encryptionKey, 1)
        try await withGateway(vb365: sim, vspc: sim, extra: extra(redis, webhook: webhook)) { a in
            try await withGateway(vb365: sim, vspc: sim, extra: extra(redis, webhook: webhook)) { b in
                try await withGateway(vb365: sim, vspc: sim, extra: extra(redis, webhook: webhook)) { c in
                    try await body([a, b, c])
                }
            }
        }
    }

    /// How many times VSPC's tenant list was read (pages of the collection).
    func listReads(_ sim: RunningSimulator) -> Int {
        sim.state.counters(.vspc).requests["GET /api/v3/infrastructure/sites/tenants"] ?? 0
    }

    @Test("three replicas poll each upstream as often as one; one change is one event, read alike from every replica; the replica that takes over compares with the last poll's tenants and customers, so nothing is missed")
    func oneWatcher() async throws {
        try await withRedis { redis in
            try await withSimulator(vb365API: .v8) { sim in
                try await withReplicas(sim, redis) { replicas in
                    let watchers = replicas.map(Self.watcher)
                    // Each replica's poll: the first takes the leases, the others skip.
                    for (index, watcher) in watchers.enumerated() { await watcher.poll(replicas[index].state.snapshot) }
                    let afterBaseline = listReads(sim)
                    #expect(afterBaseline == 1, "one replica read VSPC's list, not three: \(afterBaseline)")
                    let start = try await FeedTests.page(replicas[1], "").cursor

                    let created = try await FeedTests.simAdmin(replicas[0], sim, .post, "/_sim/vspc/tenants", #"{"name":"Foxtrot"}"#)
                    #expect(created.status == 201)
                    var logged = 0
                    for (index, watcher) in watchers.enumerated() { logged += await watcher.poll(replicas[index].state.snapshot).count }
                    #expect(listReads(sim) == afterBaseline + 1, "one poll of three replicas is one read")
                    // The tenant, and the drift it makes (a cloud tenant of no company).
                    #expect(logged == 2)
                    // Every replica serves the same events under the same ids.
                    var seen: [[String]] = []
                    for replica in replicas {
                        let page = try await FeedTests.page(replica, "?after=\(start)")
                        #expect(page.events.compactMap { $0["type"] as? String } == ["tenant.created", "drift.changed"], "\(page.events)")
                        seen.append(page.events.compactMap { $0["id"] as? String })
                    }
                    #expect(Set(seen).count == 1 && seen[0].count == 2, "\(seen)")

                    // The holder of the lease stops polling (as if dead): after its lease lapses another
                    // replica polls, compares with the baseline the first stored, and misses nothing.
                    let client = try SharedTierTests().testClient(redis)
                    _ = try await client.command(["DEL", "vgw-test:feed:lease:watch:vspc-main", "vgw-test:feed:lease:watch:vb365-eu"])
                    #expect(try await FeedTests.simAdmin(replicas[0], sim, .delete, "/_sim/vspc/tenants/c386d34c-0ab6-4e13-b30a-67fcb05b83e4").status == 204)
                    let taken = await watchers[2].poll(replicas[2].state.snapshot)
                    // The removal, and the drift it ends (Alpha was the one tenant of no company): the customers'
                    // baseline was taken over too.
                    #expect(taken.map(\.kind) == [.tenantRemoved, .driftChanged], "\(taken.map(\.kind))")
                    #expect(await watchers[0].poll(replicas[0].state.snapshot).isEmpty, "the old holder no longer polls")
                    let page = try await FeedTests.page(replicas[0], "?after=\(start)&limit=10")
                    #expect(page.events.compactMap { $0["type"] as? String } == ["tenant.created", "drift.changed", "tenant.removed", "drift.changed"])
                    client.shutdown()
                }
            }
        }
    }

    @Test("Redis killed: the feed degrades to each replica's own and says so in /readyz and /v1/status; shared cursors are gone there, never misread")
    func redisDown() async throws {
        try await withRedis { redis in
            try await withSimulator(vb365API: .v8) { sim in
                try await withReplicas(sim, redis) { replicas in
                    let watcher = Self.watcher(replicas[0])
                    await watcher.poll(replicas[0].state.snapshot)
                    let shared = try await FeedTests.page(replicas[0], "").cursor
                    redis.kill()
                    sim.state.setFaults(SimulatorFaults(errorRate: 1.0), for: .vb365)
                    let logged = await watcher.poll(replicas[0].state.snapshot)
                    #expect(logged.map(\.kind) == [.upstreamState], "each replica polls alone and logs locally: \(logged.map(\.kind))")
                    let readiness = try await replicas[0].get("/readyz").text
                    #expect(readiness.contains("this replica's own log"), "\(readiness)")
                    let status = try await replicas[0].get("/v1/status").text
                    #expect(status.contains("this replica's own log"))
                    // A cursor of the shared stream is not one of this replica's log: 410, resync.
                    #expect(try await replicas[0].get("/v1/events?after=\(shared)").status == 410)
                    let local = try await FeedTests.page(replicas[0], "?after=\(logged[0].id.split(separator: ".")[0]).0")
                    #expect(local.events.count == 1)
                    sim.state.setFaults(SimulatorFaults(), for: .vb365)
                    try await redis.start()
                }
            }
        }
    }

    @Test("a webhook across replicas: one replica delivers each event, in order, through the endpoint's consumer group; killed mid-delivery, another claims the pending event and goes on")
    func webhookTakeover() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data(WebhookTests.secret.utf8).write(to: URL(fileURLWithPath: directory + "/hook.secret"))
        let receiver = try await WebhookReceiver.start(secret: WebhookTests.secret, in: directory)
        defer { _ = receiver.child.stop() }
        let webhook = """

            events:
              pollInterval: 1h
              activityInterval: 0s
              webhooks:
                - { id: portal, url: "http://127.0.0.1:\(receiver.port)/hook", secret: { file: \(directory)/hook.secret }, caller: portal-admin, backoff: { initial: 50ms, max: 200ms } }
            """
        try await withRedis { redis in
            try await withSimulator(vb365API: .v8) { sim in
                setenv("VGW_TEST_SHARED_KEY", SharedTierTests.encryptionKey, 1)
                let config = SharedTierTests().shared(redis) + webhook
                try await withGateway(vb365: sim, vspc: sim, extra: config) { a in
                    try await withGateway(vb365: sim, vspc: sim, extra: config) { b in
                        let replicas = [a, b]
                        let watcher = Self.watcher(a)
                        await watcher.poll(a.state.snapshot)
                        var running: [Task<Void, any Error>] = []
                        for replica in replicas {
                            let client = replica.upstreamClient
                            let deliveries = WebhookDeliveries(
                                source: replica.state.source, log: replica.state.feedLog, coordination: replica.state.feedCoordination,
                                board: replica.state.webhookBoard, logger: Logger(label: "webhook-test"), idleCheck: .milliseconds(100),
                                leaseTTL: .milliseconds(900)
                            ) { CurlTransport(client: client, options: $0) }
                            running.append(Task { try await deliveries.run() })
                        }
                        defer { for task in running { task.cancel() } }
                        try await Task.sleep(for: .milliseconds(300))
                        func flip() async {
                            sim.state.setFaults(SimulatorFaults(errorRate: 1.0), for: .vb365)
                            await watcher.poll(a.state.snapshot)
                            sim.state.setFaults(SimulatorFaults(), for: .vb365)
                            await watcher.poll(a.state.snapshot)
                        }
                        await flip()
                        #expect(await eventually(within: .seconds(10)) { receiver.states.count >= 2 }, "\(receiver.deliveries)")
                        let counted = { replicas.map { $0.state.webhookBoard.all.first?.delivered ?? 0 } }
                        #expect(await eventually(within: .seconds(5)) { counted().reduce(0, +) == 2 })
                        let delivered = counted()
                        #expect(delivered.sorted() == [0, 2], "one replica delivers: \(delivered)")
                        // The holder dies in the middle of a delivery (the receiver answers 503, so its event
                        // stays pending in the group); the other replica takes over once the lease lapses,
                        // claims that event and delivers it, then the next, in order.
                        let holder = delivered[0] == 2 ? 0 : 1
                        try Data("503".utf8).write(to: URL(fileURLWithPath: receiver.statusFile))
                        await flip()
                        #expect(await eventually(within: .seconds(5)) { replicas[holder].state.webhookBoard.all.first?.failedAttempts ?? 0 >= 1 })
                        running[holder].cancel()
                        _ = await running[holder].result
                        try FileManager.default.removeItem(atPath: receiver.statusFile)
                        #expect(await eventually(within: .seconds(10)) { receiver.states.count >= 4 }, "\(receiver.deliveries)")
                        try await Task.sleep(for: .milliseconds(300))
                        #expect(receiver.states == ["down", "ok", "down", "ok"], "in order, each once")
                        #expect(replicas[1 - holder].state.webhookBoard.all.first?.delivered == 2, "the pending one and the next, by the other replica")
                        #expect(receiver.deliveries.allSatisfy { $0["verified"] as? Bool == true })
                        // The group holds nothing pending now.
                        let client = try SharedTierTests().testClient(redis)
                        let pending = try await client.command(["XPENDING", "vgw-test:feed:events", "hook:portal"])
                        if case .array(let summary) = pending, case .integer(let count)? = summary.first { #expect(count == 0) } else { Issue.record("\(pending)") }
                        client.shutdown()
                    }
                }
            }
        }
    }
}
