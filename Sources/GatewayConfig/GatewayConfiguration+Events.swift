/// `events`: the change feed. Absent, there is no feed: nothing polls the upstreams for it and
/// `/v1/events` answers 404.
public struct EventsConfiguration: Sendable, Equatable {
    /// How often each upstream's whole list is read again and compared with the last read.
    public var pollInterval: Duration = .seconds(60)
    /// How many events the log keeps; a cursor older than them is gone (410).
    public var keep = 10_000
    /// How long a long poll (`wait=`) may wait at most.
    public var maxWait: Duration = .seconds(60)
    /// How often a quiet event stream sends a comment, so that proxies keep it open.
    public var heartbeat: Duration = .seconds(15)
    /// How many readers may wait at once (long polls and streams together); beyond, 503.
    public var maxReaders = 1_000

    public init() {}
}

extension GatewayConfiguration {
    static func events(_ node: ConfigNode) throws -> EventsConfiguration? {
        guard !node.isMissing else { return nil }
        try node.requireMapping()
        try node.requireKeys(["pollInterval", "keep", "maxWait", "heartbeat", "maxReaders"])
        var events = EventsConfiguration()
        events.pollInterval = try node.child("pollInterval").duration(default: events.pollInterval)
        guard events.pollInterval >= .milliseconds(100), events.pollInterval <= .seconds(86_400) else {
            throw node.child("pollInterval").error("must be from 100ms to 24h (each poll reads every upstream's whole list)")
        }
        events.keep = try node.child("keep").int(default: events.keep, range: 1...1_000_000)
        events.maxWait = try node.child("maxWait").duration(default: events.maxWait)
        guard events.maxWait >= .zero, events.maxWait <= .seconds(300) else { throw node.child("maxWait").error("must be from 0s to 300s") }
        events.heartbeat = try node.child("heartbeat").duration(default: events.heartbeat)
        guard events.heartbeat >= .milliseconds(100), events.heartbeat <= .seconds(300) else {
            throw node.child("heartbeat").error("must be from 100ms to 300s")
        }
        events.maxReaders = try node.child("maxReaders").int(default: events.maxReaders, range: 0...100_000)
        return events
    }
}
