import ChangeFeed
import Foundation
public import GatewaySecrets
public import HTTPTransport
import GatewayAccess
import TenantModel

/// `events`: the change feed. Absent, there is no feed: nothing polls the upstreams for it and
/// `/v1/events` answers 404.
public struct EventsConfiguration: Sendable, Equatable {
    /// How often each upstream's whole list is read again and compared with the last read.
    public var pollInterval: Duration = .seconds(60)
    /// How many events the log keeps; a cursor older than them is gone (410).
    public var keep = 10_000
    /// How often each VSPC upstream's activity log is read, to poll at once when it records a
    /// change of tenants, companies or VB365 organizations (0: not read).
    public var activityInterval: Duration = .seconds(15)
    /// How long a long poll (`wait=`) may wait at most.
    public var maxWait: Duration = .seconds(60)
    /// How often a quiet event stream sends a comment, so that proxies keep it open.
    public var heartbeat: Duration = .seconds(15)
    /// How many readers may wait at once (long polls and streams together); beyond, 503.
    public var maxReaders = 1_000
    /// Where events are POSTed as they are logged.
    public var webhooks: [WebhookConfiguration] = []

    public init() {}
}

/// `events.webhooks[]`: one receiver of the feed's events, signed as Standard Webhooks say.
public struct WebhookConfiguration: Sendable, Equatable {
    /// Names it in metrics, logs and the status page (`[a-z0-9-]{1,32}`, unique).
    public var id: String
    public var url: String
    /// `whsec_` and base64 (Standard Webhooks), from `{env}` or `{file}`.
    public var secret: SecretReference
    /// The event types it gets (`tenant.created`, or `tenant.*`); empty: every type.
    public var events: [String] = []
    /// It gets the events this configured caller may see.
    public var caller: String
    /// How long one event is retried before it is given up on.
    public var retryFor: Duration = .seconds(86_400)
    /// The first wait after a failed attempt, doubled each time up to `backoffMax` (each wait
    /// drawn between half and all of it).
    public var backoffInitial: Duration = .seconds(1)
    public var backoffMax: Duration = .seconds(300)
    public var options = TransferOptions(totalTimeout: .seconds(10))

    /// Whether it gets events of `type` (a `FeedEvent.Kind` raw value).
    public func wants(_ type: String) -> Bool {
        events.isEmpty || events.contains { $0 == type || ($0.hasSuffix(".*") && type.hasPrefix($0.dropLast())) }
    }
}

extension GatewayConfiguration {
    static func events(_ node: ConfigNode, callers: [CallerRecord], environment: [String: String]) throws -> EventsConfiguration? {
        guard !node.isMissing else { return nil }
        node.requireMapping()
        node.requireKeys(["pollInterval", "activityInterval", "keep", "maxWait", "heartbeat", "maxReaders", "webhooks"])
        var events = EventsConfiguration()
        events.pollInterval = node.child("pollInterval").duration(default: events.pollInterval)
        if events.pollInterval < .milliseconds(100) || events.pollInterval > .seconds(86_400) {
            node.child("pollInterval").note("must be from 100ms to 24h (each poll reads every upstream's whole list)")
        }
        events.activityInterval = node.child("activityInterval").duration(default: events.activityInterval)
        if events.activityInterval != .zero, events.activityInterval < .milliseconds(100) || events.activityInterval > .seconds(86_400) {
            node.child("activityInterval").note("must be 0s (off) or from 100ms to 24h")
        }
        events.keep = node.child("keep").int(default: events.keep, range: 1...1_000_000)
        events.maxWait = node.child("maxWait").duration(default: events.maxWait)
        if events.maxWait < .zero || events.maxWait > .seconds(300) { node.child("maxWait").note("must be from 0s to 300s") }
        events.heartbeat = node.child("heartbeat").duration(default: events.heartbeat)
        if events.heartbeat < .milliseconds(100) || events.heartbeat > .seconds(300) { node.child("heartbeat").note("must be from 100ms to 300s") }
        events.maxReaders = node.child("maxReaders").int(default: events.maxReaders, range: 0...100_000)
        var ids = Set<String>()
        for hook in node.child("webhooks").array() {
            guard let webhook: WebhookConfiguration = hook.collect(nil, { try webhook(hook, callers: callers, environment: environment) }) else { continue }
            guard ids.insert(webhook.id).inserted else {
                hook.child("id").note("is used by another webhook")
                continue
            }
            events.webhooks.append(webhook)
        }
        return events
    }

    static func webhook(_ node: ConfigNode, callers: [CallerRecord], environment: [String: String]) throws -> WebhookConfiguration {
        node.requireMapping()
        node.requireKeys(["id", "url", "secret", "events", "caller", "retryFor", "backoff", "timeout", "tls"])
        let id = node.child("id").string()
        guard TenantID.isValidUpstreamName(id) else { throw node.child("id").error("must be 1-32 characters of a-z, 0-9 and -") }
        let url = node.child("url").string()
        guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil, parsed.user == nil, parsed.password == nil else {
            throw node.child("url").error("must be an http(s) URL with a host and no user or password")
        }
        guard !node.child("secret").isMissing else { throw node.child("secret").error("is required ({env: NAME} or {file: PATH} holding whsec_…)") }
        let secret = try secretReference(node.child("secret"), environment: environment)
        if let value = try? secret.resolve(environment: environment), WebhookSigning.key(fromSecret: value.value) == nil {
            throw node.child("secret").error("must be whsec_ followed by base64 of 24 to 64 bytes (Standard Webhooks)")
        }
        let caller = node.child("caller").string()
        guard callers.contains(where: { $0.id == caller }) || node.diagnostics.unreadableCallers.contains(caller) else {
            throw node.child("caller").error("names no configured caller")
        }
        var webhook = WebhookConfiguration(id: id, url: url, secret: secret, caller: caller)
        let kinds = Set(FeedEvent.Kind.allCases.map(\.rawValue))
        for entry in node.child("events").array() {
            let name = entry.string()
            let prefixes = Set(kinds.map { String($0.prefix { $0 != "." }) + ".*" })
            guard kinds.contains(name) || prefixes.contains(name) else {
                throw entry.error("is no event type (\(kinds.sorted().joined(separator: ", ")), or a family such as tenant.*)")
            }
            webhook.events.append(name)
        }
        webhook.retryFor = node.child("retryFor").duration(default: webhook.retryFor)
        guard webhook.retryFor >= .zero, webhook.retryFor <= .seconds(7 * 86_400) else { throw node.child("retryFor").error("must be from 0s to 7d") }
        let backoff = node.child("backoff")
        backoff.requireKeys(["initial", "max"])
        webhook.backoffInitial = backoff.child("initial").duration(default: webhook.backoffInitial)
        webhook.backoffMax = backoff.child("max").duration(default: webhook.backoffMax)
        guard webhook.backoffInitial >= .milliseconds(10), webhook.backoffMax >= webhook.backoffInitial, webhook.backoffMax <= .seconds(3_600) else {
            throw backoff.error("needs 10ms <= initial <= max <= 1h")
        }
        let timeout = node.child("timeout").duration(default: .seconds(10))
        guard timeout >= .milliseconds(100), timeout <= .seconds(120) else { throw node.child("timeout").error("must be from 100ms to 120s") }
        webhook.options = TransferOptions(tls: try transferTLS(node.child("tls")), connectTimeout: min(timeout, .seconds(5)), totalTimeout: timeout)
        return webhook
    }
}
