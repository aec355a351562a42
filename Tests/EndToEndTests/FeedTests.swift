import ChangeFeed
import Foundation
import GatewayRuntime
import GatewayTestSupport
import HTTPTransport
import Logging
import Testing
import VeeamSimulator

/// The change feed against the simulator: the watcher driven poll by poll (`FeedWatcher.poll`),
/// `/v1/events` long polls and `/v1/events/stream` read by `curl` as a process of its own, over
/// HTTP/1.1 and HTTP/2.
/// One page of `/v1/events`, parsed.
struct FeedPage {
    var events: [[String: Any]]
    var cursor: String
}

@Suite("End to end: the change feed", .serialized)
struct FeedTests {
    static let events = "events: { pollInterval: 1h, maxWait: 10s, heartbeat: 300ms, keep: 50 }"

    static func watcher(_ gw: RunningGateway) -> FeedWatcher {
        FeedWatcher(source: gw.state.source, log: gw.state.feed, logger: Logger(label: "feed-test"))
    }

    static func page(_ gw: RunningGateway, _ query: String, key: String? = TestKeys.portalAdmin) async throws -> FeedPage {
        try parse(try await gw.get("/v1/events" + query, key: key))
    }

    static func parse(_ answer: UpstreamResponse) throws -> FeedPage {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any], "\(answer.status) \(answer.text)")
        let cursor = try #require((object["meta"] as? [String: Any])?["cursor"] as? String, "\(object)")
        return FeedPage(events: try #require(object["data"] as? [[String: Any]]), cursor: cursor)
    }

    @Test("a long poll answers as soon as an event it may see is logged; cursors move past what a caller may not see; 410, 400, 404 and 401 where they belong")
    func longPoll() async throws {
        try await withSimulator(vb365API: .v8) { sim in
            try await withGateway(vb365: sim, vspc: sim, extra: Self.events) { gw in
                let watcher = Self.watcher(gw)
                #expect(await watcher.poll(gw.state.snapshot).isEmpty, "the first poll is the baseline")
                let start = try await Self.page(gw, "")
                #expect(start.events.isEmpty && start.cursor.hasSuffix(".0"))

                // A long poll, then VSPC fails and the next poll notices.
                let startCursor = start.cursor
                let waiting = Task { try await gw.get("/v1/events?after=\(startCursor)&wait=10s") }
                try await Task.sleep(for: .milliseconds(200))
                sim.state.setFaults(SimulatorFaults(errorRate: 1.0), for: .vspc)
                let began = ContinuousClock.now
                let logged = await watcher.poll(gw.state.snapshot)
                #expect(logged.map(\.kind) == [.upstreamState], "\(logged.map(\.kind))")
                let answered = try Self.parse(try await waiting.value)
                #expect(ContinuousClock.now - began < .seconds(5), "the long poll answered when the event was logged")
                let event = try #require(answered.events.first)
                #expect(event["type"] as? String == "upstream.state" && event["upstream"] as? String == "vspc-main")
                let data = try #require(event["data"] as? [String: Any])
                #expect(data["state"] as? String == "down" && data["previous"] as? String == "ok")
                #expect((data["reason"] as? String)?.isEmpty == false)
                #expect(answered.cursor == event["id"] as? String)

                // abc's app may not see VSPC's state: nothing for it, and its cursor moves on.
                let app = try await Self.page(gw, "?after=\(start.cursor)", key: TestKeys.abcApp)
                #expect(app.events.isEmpty && app.cursor == answered.cursor)

                // Back: ok again, told once.
                sim.state.setFaults(SimulatorFaults(), for: .vspc)
                #expect(await watcher.poll(gw.state.snapshot).map(\.kind) == [.upstreamState])
                #expect(await watcher.poll(gw.state.snapshot).isEmpty, "nothing changed")
                let after = try await Self.page(gw, "?after=\(answered.cursor)")
                #expect(after.events.compactMap { ($0["data"] as? [String: Any])?["state"] as? String } == ["ok"])

                // A cursor of another start, or beyond the newest: gone, with a problem that says to resync.
                let epoch = try #require(start.cursor.split(separator: ".").first)
                for cursor in ["0123456789abcdef.1", "\(epoch).999"] {
                    let gone = try await gw.get("/v1/events?after=\(cursor)")
                    #expect(gone.status == 410 && gone.text.contains("events.cursor_gone") && gone.text.contains("/v1/tenants"), "\(gone.text)")
                }
                for query in ["?after=not-a-cursor", "?limit=0", "?limit=1001", "?wait=11s", "?wait=soon"] {
                    #expect(try await gw.get("/v1/events" + query).status == 400, "\(query)")
                }
                #expect(try await gw.get("/v1/events", key: nil).status == 401)
            }
        }
    }

    @Test("without an events section there is no feed: 404, and nothing is polled")
    func notConfigured() async throws {
        try await withSimulator(vb365API: .v8) { sim in
            try await withGateway(vb365: sim, vspc: sim) { gw in
                let answer = try await gw.get("/v1/events")
                #expect(answer.status == 404 && answer.text.contains("events.not_configured"), "\(answer.text)")
                #expect(try await gw.get("/v1/events/stream").status == 404)
            }
        }
    }

    /// Runs `curl` on the stream for `seconds` (HTTP/2 when asked); its standard output.
    static func stream(_ gw: RunningGateway, http2: Bool, seconds: Int, lastEventID: String? = nil) async throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        var arguments = ["curl", "-sN", "--max-time", "\(seconds)", "-H", "X-API-Key: \(TestKeys.portalAdmin)", http2 ? "--http2" : "--http1.1"]
        if let caFile = gw.callerOptions.tls.caFile { arguments += ["--cacert", caFile] }
        if let lastEventID { arguments += ["-H", "Last-Event-ID: \(lastEventID)"] }
        process.arguments = arguments + [gw.baseURL + "/v1/events/stream"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = Pipe()
        try process.run()
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                let data = output.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                continuation.resume(returning: String(decoding: data, as: UTF8.self))
            }
        }
    }

    @Test("the event stream over HTTP/1.1 and HTTP/2: events as they are logged, heartbeats while quiet, Last-Event-ID resumes")
    func stream() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files = try FrontTLSFiles(directory: directory)
        try await withSimulator(vb365API: .v8) { sim in
            try await withGateway(vb365: sim, vspc: sim, listen: files.listen(), extra: Self.events, frontCAFile: files.ca) { gw in
                let watcher = Self.watcher(gw)
                await watcher.poll(gw.state.snapshot)
                let start = try await Self.page(gw, "").cursor
                for http2 in [false, true] {
                    let reading = Task { try await Self.stream(gw, http2: http2, seconds: 3, lastEventID: start) }
                    try await Task.sleep(for: .milliseconds(800))
                    sim.state.setFaults(SimulatorFaults(errorRate: 1.0), for: .vb365)
                    await watcher.poll(gw.state.snapshot)
                    sim.state.setFaults(SimulatorFaults(), for: .vb365)
                    await watcher.poll(gw.state.snapshot)
                    let text = try await reading.value
                    #expect(text.hasPrefix("retry: 2000\n\n"), "\(http2 ? "h2" : "h1"): \(text.prefix(200))")
                    #expect(text.contains(": heartbeat\n\n"), "\(http2 ? "h2" : "h1"): quiet for 800 ms with a 300 ms heartbeat")
                    let states = text.components(separatedBy: "\n\n").filter { $0.contains("event: upstream.state") }
                    // From the start cursor: every state change so far, in order, each once.
                    #expect(states.count == (http2 ? 4 : 2), "\(http2 ? "h2" : "h1"): \(text)")
                    #expect(states.allSatisfy { $0.contains("\"upstream\":\"vb365-eu\"") && $0.hasPrefix("id: ") || $0.contains("\nid: ") })
                }
            }
        }
    }

    /// Sends an admin request to the simulator (`/_sim/…` on its VSPC port).
    static func simAdmin(_ gw: RunningGateway, _ sim: RunningSimulator, _ method: HTTPMethod, _ path: String, _ json: String? = nil) async throws -> UpstreamResponse {
        try await gw.client.perform(
            UpstreamRequest(method: method, url: sim.vspcBaseURL + path, body: json.map { .json(Array($0.utf8)) }), options: sim.trustingOptions())
    }

    @Test("tenants created, changed (with the members that changed) and removed in the simulator while it runs become events, each seen only by who may read it; customers and drift follow")
    func tenantEvents() async throws {
        try await withSimulator(vb365API: .v8) { sim in
            try await withGateway(vb365: sim, vspc: sim, extra: Self.events, extraCallers: CustomerScopeTests.portal) { gw in
                let watcher = Self.watcher(gw)
                await watcher.poll(gw.state.snapshot)
                let start = try await Self.page(gw, "").cursor

                // VSPC: a new tenant of ABC Tech, Bravo renamed and disabled, charlie-vcd removed.
                let created = try await Self.simAdmin(
                    gw, sim, .post, "/_sim/vspc/tenants", #"{"name":"Delta","assignedForCompany":"c0a1b2c3-0001-4a1b-8c2d-0000000000a1"}"#)
                #expect(created.status == 201, "\(created.text)")
                let deltaUid = try #require((try JSONSerialization.jsonObject(with: Data(created.body)) as? [String: Any])?["instanceUid"] as? String)
                #expect(try await Self.simAdmin(gw, sim, HTTPMethod(rawValue: "PATCH"), "/_sim/vspc/tenants/0f8e7d6c-5b4a-4392-8170-6e5d4c3b2a19", #"{"name":"Bravo Two","isEnabled":false}"#).status == 200)
                #expect(try await Self.simAdmin(gw, sim, .delete, "/_sim/vspc/tenants/7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d").status == 204)
                // VB365: abc renamed.
                #expect(try await Self.simAdmin(gw, sim, HTTPMethod(rawValue: "PATCH"), "/_sim/vb365/organizations/cbc52c37-df7f-4b03-98f3-036e7d4b3127", #"{"name":"abc-renamed.onmicrosoft.com"}"#).status == 200)

                let logged = await watcher.poll(gw.state.snapshot)
                let kinds = logged.map(\.kind.rawValue)
                #expect(kinds.filter { $0.hasPrefix("tenant.") }.sorted() == ["tenant.changed", "tenant.changed", "tenant.created", "tenant.removed"], "\(kinds)")
                let all = try await Self.page(gw, "?after=\(start)&limit=100")
                func event(_ type: String, _ id: String) -> [String: Any]? {
                    all.events.first { $0["type"] as? String == type && ($0["data"] as? [String: Any])?["id"] as? String == id }
                }
                let delta = try #require(event("tenant.created", "vspc-main." + deltaUid), "\(all.events.map { $0["type"] ?? "" })")
                #expect((delta["data"] as? [String: Any])?["name"] as? String == "Delta")
                let bravo = try #require(event("tenant.changed", CustomerTests.bravo))
                #expect(Set(bravo["changed"] as? [String] ?? []).isSuperset(of: ["enabled", "name"]), "\(bravo)")
                #expect((bravo["changed"] as? [String])?.contains("description") == false, "only what changed")
                #expect(event("tenant.removed", CustomerTests.charlie) != nil)
                let abc = try #require(event("tenant.changed", CustomerTests.abc))
                #expect(abc["changed"] as? [String] == ["name"], "\(abc)")
                #expect(all.events.allSatisfy { ($0["id"] as? String)?.isEmpty == false && ($0["time"] as? String)?.hasSuffix("Z") == true })
                // Secrets never travel: no hashedPassword, no credentials in any event.
                let text = try await gw.get("/v1/events?after=\(start)&limit=100").text
                #expect(!text.contains("hashedPassword") && !text.contains("Bravo-Tenant-Pass"))

                // abc's app sees abc's change only; ABC Tech's portal sees its tenants' events.
                let app = try await Self.page(gw, "?after=\(start)&limit=100", key: TestKeys.abcApp)
                #expect(app.events.compactMap { ($0["data"] as? [String: Any])?["id"] as? String } == [CustomerTests.abc], "\(app.events)")
                let portal = try await Self.page(gw, "?after=\(start)&limit=100", key: CustomerScopeTests.portalKey)
                let seen = Set(portal.events.compactMap { ($0["data"] as? [String: Any])?["id"] as? String })
                #expect(seen.contains("vspc-main." + deltaUid) && seen.contains(CustomerTests.abc) && !seen.contains(CustomerTests.bravo), "\(seen)")
                // The customers: ABC Tech changed (a cloud tenant more, one less), and the drift with it.
                #expect(kinds.contains("customer.changed"), "\(kinds)")

                // Nothing changed since: the next poll logs nothing.
                #expect(await watcher.poll(gw.state.snapshot).isEmpty)
            }
        }
    }

    @Test("the watcher as it runs: a change VSPC's activity log records is polled at once, long before the poll interval")
    func activityLog() async throws {
        try await withSimulator(vb365API: .v8) { sim in
            let events = "events: { pollInterval: 1h, activityInterval: 200ms, maxWait: 10s }"
            try await withGateway(vb365: sim, vspc: sim, extra: events) { gw in
                let watcher = Self.watcher(gw)
                let running = Task { try await watcher.run() }
                defer { running.cancel() }
                // The first poll (the baseline) and the first reading of the activity log.
                #expect(await eventually(within: .seconds(5)) { sim.state.counters(.vspc).requests["GET /api/v3/eventLogs/activityLogs"] ?? 0 >= 2 })
                let start = try await Self.page(gw, "").cursor
                let created = try await Self.simAdmin(gw, sim, .post, "/_sim/vspc/tenants", #"{"name":"Echo"}"#)
                #expect(created.status == 201)
                let began = ContinuousClock.now
                let answer = try await Self.page(gw, "?after=\(start)&wait=10s")
                #expect(ContinuousClock.now - began < .seconds(5), "polled on the activity log's record, not after the hour")
                #expect(answer.events.contains { $0["type"] as? String == "tenant.created" && ($0["data"] as? [String: Any])?["name"] as? String == "Echo" }, "\(answer.events)")
            }
        }
    }
}
