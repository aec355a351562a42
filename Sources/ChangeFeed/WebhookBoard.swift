import Foundation
public import GatewayObservability
import Synchronization

/// What each webhook endpoint's deliveries came to, for `/v1/status` and `/metrics`: counted by
/// the deliverer, read by both. Keyed by the endpoint's configured id (never its URL, whose query
/// may hold a token).
public final class WebhookBoard: Sendable {
    public typealias Entry = StatusReport.Webhook

    private let entries = Mutex<[String: Entry]>([:])

    public init() {}

    /// Changes the entry of endpoint `id` (made on first use with `target`).
    public func update(_ id: String, target: String, _ change: (inout Entry) -> Void) {
        entries.withLock { all in
            var entry = all[id] ?? Entry(id: id, target: target)
            change(&entry)
            all[id] = entry
        }
    }

    /// Every endpoint's entry, by id.
    public var all: [Entry] {
        entries.withLock { all in all.keys.sorted().compactMap { all[$0] } }
    }

    /// Brings the counts into the metrics (called when `/metrics` is scraped).
    public func collect(into metrics: GatewayMetrics) {
        for entry in all {
            let endpoint = [("endpoint", entry.id)]
            metrics.syncCounter("veeam_gateway_webhook_deliveries_total", dimensions: endpoint + [("outcome", "delivered")], to: entry.delivered)
            metrics.syncCounter("veeam_gateway_webhook_deliveries_total", dimensions: endpoint + [("outcome", "failed")], to: entry.failed)
            metrics.syncCounter("veeam_gateway_webhook_failed_attempts_total", dimensions: endpoint, to: entry.failedAttempts)
            metrics.syncCounter("veeam_gateway_webhook_missed_events_total", dimensions: endpoint, to: entry.missed)
            metrics.gauge("veeam_gateway_webhook_pending_events", dimensions: endpoint, entry.pending)
        }
    }
}
