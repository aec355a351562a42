/// What replicas sharing a feed agree on (the shared tier's ``FeedLog`` provides it): who polls
/// each upstream, what its last poll saw, who delivers to each webhook and from where. Every
/// answer may be "cannot say" (nil): the shared tier is away, and each replica acts alone.
public protocol FeedCoordination: Sendable {
    /// Whether this replica holds `role` (taking or keeping its lease for `ttl`); nil: unknown.
    func leads(_ role: String, for ttl: Duration) async -> Bool?
    /// What the last poll saw in `set` (an upstream's tenants, a VSPC upstream's customers), by
    /// id, as JSON, as the replica that made it stored it; nil when nothing is stored.
    func records(of set: String) async -> [String: [UInt8]]?
    /// Records what this poll saw in `set`: `changed` new or changed, `removed` gone.
    func store(records changed: [String: [UInt8]], removed: [String], in set: String) async
    /// The next event for webhook `hook` from its consumer group: first what the group holds
    /// delivered to no one yet (a consumer that died with it), then the next new one.
    func nextDelivery(for hook: String) async -> GroupDelivery
    /// The group's event `sequence` is done with (delivered, given up on, or not for this endpoint).
    func acknowledge(_ sequence: UInt64, for hook: String) async
}

/// What a webhook's consumer group hands its deliverer.
public enum GroupDelivery: Sendable {
    case event(FeedEvent)
    /// An event the group held that the stream no longer keeps (it was trimmed): missed.
    case missing(UInt64)
    /// Nothing to deliver now.
    case none
    /// The shared tier does not answer: the deliverer reads this replica's own log meanwhile.
    case unavailable
}
