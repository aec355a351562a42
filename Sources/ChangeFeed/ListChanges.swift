public import TenantModel

/// What changed between two reads of one upstream's list, found in time linear in the lists:
/// the previous read is kept by tenant id, and each tenant of the new read is compared with the
/// one of its id (every member, `details` member by member).
public struct ListChanges: Sendable {
    public var created: [Tenant] = []
    /// Each changed tenant as it is now, with the members that changed (`name`, `enabled`,
    /// `backup.lastBackupAt`, `details.isEnabled`, …), sorted.
    public var changed: [Changed] = []
    public var removed: [Tenant] = []

    public struct Changed: Sendable {
        public var tenant: Tenant
        public var members: [String]
    }

    public var isEmpty: Bool { created.isEmpty && changed.isEmpty && removed.isEmpty }

    /// The changes from `previous` (by id) to `current`. With `complete` false (some of the
    /// upstream's accounts failed), a tenant missing from `current` is not taken as removed.
    public static func between(_ previous: [String: Tenant], _ current: [Tenant], complete: Bool = true) -> ListChanges {
        var changes = ListChanges()
        var seen = Set<String>()
        seen.reserveCapacity(current.count)
        for tenant in current {
            seen.insert(tenant.id)
            guard let before = previous[tenant.id] else {
                changes.created.append(tenant)
                continue
            }
            guard before != tenant else { continue }
            changes.changed.append(Changed(tenant: tenant, members: members(from: before, to: tenant)))
        }
        if complete {
            for (id, tenant) in previous where !seen.contains(id) { changes.removed.append(tenant) }
            changes.removed.sort { $0.id < $1.id }
        }
        return changes
    }

    /// The names of the members that differ.
    static func members(from before: Tenant, to after: Tenant) -> [String] {
        var names: [String] = []
        if before.name != after.name { names.append("name") }
        if before.description != after.description { names.append("description") }
        if before.type != after.type { names.append("type") }
        if before.enabled != after.enabled { names.append("enabled") }
        if before.backup.protected != after.backup.protected { names.append("backup.protected") }
        if before.backup.firstBackupAt != after.backup.firstBackupAt { names.append("backup.firstBackupAt") }
        if before.backup.lastBackupAt != after.backup.lastBackupAt { names.append("backup.lastBackupAt") }
        for key in Set(before.details.keys).union(after.details.keys) where before.details[key] != after.details[key] {
            names.append("details." + key)
        }
        if before.customer != after.customer { names.append("links.customer") }
        return names.sorted()
    }
}
