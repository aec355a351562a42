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
}
