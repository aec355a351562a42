import ChangeFeed
import CurlHTTP
import Foundation
import GatewayRuntime
import GatewayTestSupport
import HTTPTransport
import Logging
import Testing
import VeeamSimulator

/// `scripts/webhook-receiver.py` as a process: it verifies every delivery with the published
/// `standardwebhooks` library and writes it down.
struct WebhookReceiver {
    let child: Child
    let port: Int
    let out: String
    let statusFile: String

    static func start(secret: String, in directory: String, port: Int = 0) async throws -> WebhookReceiver {
        let portFile = directory + "/receiver-port-\(UUID().uuidString)"
        let out = directory + "/deliveries.jsonl"
        let statusFile = directory + "/receiver-status"
        let child = try Child(
            "/usr/bin/env",
            ["python3", repositoryRoot + "/scripts/webhook-receiver.py", "--secret", secret, "--out", out, "--port", "\(port)", "--port-file", portFile, "--status-file", statusFile])
        try await waitForFile(portFile)
        let bound = try #require(Int(try String(contentsOfFile: portFile, encoding: .utf8)), "the receiver did not start: \(child.text)")
        return WebhookReceiver(child: child, port: bound, out: out, statusFile: statusFile)
    }

    /// Every delivery so far, in the order they arrived.
    var deliveries: [[String: Any]] {
        guard let text = try? String(contentsOfFile: out, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    /// The events of the deliveries, by their `data.state` for `upstream.state` events.
    var states: [String] {
        deliveries.compactMap { (($0["event"] as? [String: Any])?["data"] as? [String: Any])?["state"] as? String }
    }
}

@Suite("End to end: the change feed's webhooks", .serialized)
struct WebhookTests {
    static let secret = "whsec_" + Data((0..<32).map { UInt8($0 * 7 % 251) }).base64EncodedString()

    @Test("each event is POSTed once, in order, signed as Standard Webhooks say (verified by the published library); a failing or stopped receiver gets everything when it is back; counted in /metrics and /v1/status, no secret shown")
    func deliveries() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data(Self.secret.utf8).write(to: URL(fileURLWithPath: directory + "/hook.secret"))
        var receiver = try await WebhookReceiver.start(secret: Self.secret, in: directory)
        defer { _ = receiver.child.stop() }
        let events = """
            events:
              pollInterval: 1h
              webhooks:
                - { id: portal, url: "http://127.0.0.1:\(receiver.port)/hook?token=s3cret-token", secret: { file: \(directory)/hook.secret }, caller: portal-admin, backoff: { initial: 50ms, max: 300ms } }
                - { id: abc, url: "http://127.0.0.1:\(receiver.port)/abc", secret: { file: \(directory)/hook.secret }, caller: abc-app, events: [upstream.*] }
            """
        try await withSimulator(vb365API: .v8) { sim in
            try await withGateway(vb365: sim, vspc: sim, extra: events) { gw in
                let watcher = FeedWatcher(source: gw.state.source, log: gw.state.feed, logger: Logger(label: "feed-test"))
                let client = gw.upstreamClient
                let deliveries = WebhookDeliveries(
                    source: gw.state.source, log: gw.state.feed, board: gw.state.webhookBoard, logger: Logger(label: "webhook-test"),
                    idleCheck: .milliseconds(200)
                ) { CurlTransport(client: client, options: $0) }
                let running = Task { try await deliveries.run() }
                defer { running.cancel() }
                await watcher.poll(gw.state.snapshot)
                try await Task.sleep(for: .milliseconds(300))  // the endpoints start at the newest event

                func flip() async {
                    sim.state.setFaults(SimulatorFaults(errorRate: 1.0), for: .vb365)
                    await watcher.poll(gw.state.snapshot)
                    sim.state.setFaults(SimulatorFaults(), for: .vb365)
                    await watcher.poll(gw.state.snapshot)
                }
                await flip()
                #expect(await eventually(within: .seconds(10)) { receiver.states.count >= 2 }, "\(receiver.deliveries)")
                #expect(receiver.states == ["down", "ok"])
                #expect(receiver.deliveries.allSatisfy { $0["verified"] as? Bool == true })
                #expect(receiver.deliveries.map { $0["webhookId"] as? String } == receiver.deliveries.map { ($0["event"] as? [String: Any])?["id"] as? String })

                // Failing (503): retried with backoff, then all delivered in order.
                try Data("503".utf8).write(to: URL(fileURLWithPath: receiver.statusFile))
                await flip()
                #expect(await eventually(within: .seconds(5)) { gw.state.webhookBoard.all.first { $0.id == "portal" }?.failedAttempts ?? 0 >= 2 })
                #expect(gw.state.webhookBoard.all.first { $0.id == "portal" }?.state == "retrying")
                try FileManager.default.removeItem(atPath: receiver.statusFile)
                #expect(await eventually(within: .seconds(10)) { receiver.states.count >= 4 })

                // Stopped altogether, then started again on its port.
                let port = receiver.port
                _ = receiver.child.stop()
                await flip()
                try await Task.sleep(for: .milliseconds(700))
                receiver = try await WebhookReceiver.start(secret: Self.secret, in: directory, port: port)
                #expect(await eventually(within: .seconds(10)) { receiver.states.count >= 6 }, "\(receiver.deliveries)")
                try await Task.sleep(for: .milliseconds(300))
                #expect(receiver.states == ["down", "ok", "down", "ok", "down", "ok"], "in order, each once")
                #expect(receiver.deliveries.allSatisfy { $0["verified"] as? Bool == true })

                // abc's app may see none of these: nothing was sent to its endpoint.
                let abc = try #require(gw.state.webhookBoard.all.first { $0.id == "abc" })
                #expect(abc.delivered == 0 && abc.failedAttempts == 0)

                let metrics = try await gw.get("/metrics").text
                #expect(metrics.contains(#"veeam_gateway_webhook_deliveries_total{endpoint="portal",outcome="delivered"} 6"#), "\(metrics.split(separator: "\n").filter { $0.contains("webhook") })")
                #expect(metrics.contains(#"veeam_gateway_webhook_failed_attempts_total{endpoint="portal"}"#))
                let status = try await gw.get("/v1/status")
                #expect(status.text.contains(#""id":"portal""#) && status.text.contains(#""delivered":6"#), "\(status.text.prefix(300))")
                #expect(!status.text.contains("s3cret") && !metrics.contains("s3cret"), "a webhook's URL query is never shown")
                #expect(!gw.logs.all.contains { $0.contains("s3cret") || $0.contains(Self.secret) })
            }
        }
    }
}
