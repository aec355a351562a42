public import GatewayAccess

/// Who may see which event, decided from the event's audience with the same rules as reads:
/// a tenant's event as reading that tenant (a company's caller through its customers), a
/// customer's as reading that customer whole, an upstream's state as reading every tenant of
/// its kind, the drift as reading the drift report.
public enum FeedAccess {
    /// The filter of what `caller` may see under `policy`.
    public static func visible(_ caller: Caller, policy: AccessPolicy) -> @Sendable (FeedEvent) -> Bool {
        { event in
            switch event.audience {
            case .tenant(let kind, let id, let customers):
                return policy.canRead(caller, kind: kind, id: id, customers: { customers }) == .allow
            case .customer(let id):
                return !caller.roles.isDisjoint(with: Role.customerReaders) || caller.scopes.contains(Scope.company(id))
            case .upstream(let kind):
                return policy.readsAll(caller, kind: kind)
            case .drift:
                return !caller.roles.isDisjoint(with: Role.customerReaders)
            }
        }
    }
}
