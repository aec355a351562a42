public import TenantModel

/// What replicas sharing a feed agree on (the shared tier's ``FeedLog`` provides it): who polls
/// each upstream, what its last poll saw, who delivers to each webhook and from where. Every
/// answer may be "cannot say" (nil): the shared tier is away, and each replica acts alone.
public protocol FeedCoordination: Sendable {
    /// Whether this replica holds `role` (taking or keeping its lease for `ttl`); nil: unknown.
    func leads(_ role: String, for ttl: Duration) async -> Bool?
    /// The tenants `upstream`'s last poll saw, by id, as the replica that made it stored them.
    func baseline(of upstream: String) async -> [String: Tenant]?
    /// Records what this poll saw: `tenants` new or changed, `removed` gone.
    func store(baseline tenants: [Tenant], removed: [String], of upstream: String) async
    /// Where webhook `hook` is: the last event it got.
    func position(of hook: String) async -> FeedCursor?
    func store(position: FeedCursor, of hook: String) async
}
