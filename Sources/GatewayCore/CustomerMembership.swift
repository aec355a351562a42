import Synchronization
public import TenantModel

/// Which customer each tenant belongs to, as the last join of each VSPC upstream found it: what
/// puts `links.customer` in a tenant's answer and what lets a company-scoped caller read the
/// company's tenants. Built by joins only (``CustomerReads``): a tenant read never joins, so it
/// costs the Veeam servers nothing more than before.
public final class CustomerMembership: Sendable {
    private struct State {
        /// VSPC upstream → tenant id → its customer ids in that VSPC (an organization two
        /// companies map sits in both).
        var byUpstream: [String: [String: [String]]] = [:]
        /// Tenant id → customer ids, over every VSPC upstream (sorted).
        var byTenant: [String: [String]] = [:]
        /// Customer id → its tenant ids.
        var byCustomer: [String: Set<String>] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// The customers `tenantID` belongs to (sorted; empty when none, or no join has run).
    public func customers(of tenantID: String) -> [String] {
        state.withLock { $0.byTenant[tenantID] ?? [] }
    }

    /// Every tenant's customers at once (a list's view reads thousands without a lock each).
    public func table() -> [String: [String]] {
        state.withLock { $0.byTenant }
    }

    /// The tenants of these customers.
    public func tenants(of customers: some Sequence<String>) -> Set<String> {
        state.withLock { state in customers.reduce(into: Set<String>()) { $0.formUnion(state.byCustomer[$1] ?? []) } }
    }

    /// The customer a tenant's answer links (`links.customer`): the first of its customers.
    public func customer(of tenantID: String) -> String? {
        customers(of: tenantID).first
    }

    /// Gives each tenant its customer link, from one read of the table.
    public func link(_ tenants: inout [Tenant]) {
        Self.link(&tenants, using: table())
    }

    /// Gives each tenant its customer link from `table` (``table()``, read once by the caller).
    public static func link(_ tenants: inout [Tenant], using table: [String: [String]]) {
        guard !table.isEmpty else { return }
        for index in tenants.indices { tenants[index].customer = table[tenants[index].id]?.first }
    }

    /// Whether every VSPC upstream named has been joined at least once.
    public func isKnown(for vspcUpstreams: [String]) -> Bool {
        state.withLock { state in vspcUpstreams.allSatisfy { state.byUpstream[$0] != nil } }
    }

    /// Records one VSPC upstream's join; returns the tenants whose customers changed. The
    /// tables are made again from every upstream's members: joins are rare (one per list
    /// freshness at most), lookups are not.
    @discardableResult
    public func record(vspc upstream: String, _ join: CustomerJoin) -> Set<String> {
        var members: [String: [String]] = [:]
        for customer in join.customers {
            for tenant in customer.cloudTenants { members[tenant.id, default: []].append(customer.id) }
            for organization in customer.organizations {
                if let tenant = organization.tenant { members[tenant, default: []].append(customer.id) }
            }
        }
        return state.withLock { state in
            let previous = state.byUpstream[upstream]
            guard previous != members else { return [] }
            state.byUpstream[upstream] = members
            var changed = Set<String>()
            for (tenant, customers) in members where previous?[tenant] != customers { changed.insert(tenant) }
            for tenant in (previous ?? [:]).keys where members[tenant] == nil { changed.insert(tenant) }
            var byTenant: [String: Set<String>] = [:]
            var byCustomer: [String: Set<String>] = [:]
            for table in state.byUpstream.values {
                for (tenant, customers) in table {
                    byTenant[tenant, default: []].formUnion(customers)
                    for customer in customers { byCustomer[customer, default: []].insert(tenant) }
                }
            }
            state.byTenant = byTenant.mapValues { $0.sorted() }
            state.byCustomer = byCustomer
            return changed
        }
    }
}
