public import TenantModel
public import VeeamWire

/// One of this gateway's VB365 upstreams as the customer join sees it: which of VSPC's VB365
/// servers it is (nil: not known, see ``CustomerSources``), and the organizations it reads (nil:
/// they could not be read).
public struct JoinedVB365Upstream: Sendable {
    public var name: String
    public var serverUid: String?
    public var organizations: [Tenant]?

    public init(name: String, serverUid: String?, organizations: [Tenant]?) {
        self.name = name
        self.serverUid = serverUid
        self.organizations = organizations
    }
}

/// What one VSPC upstream knows of its customers, and what the gateway's VB365 upstreams read.
public struct CustomerSources: Sendable {
    public var vspcUpstream: String
    public var companies: [VSPCCompany]
    /// This VSPC's cloud tenants, normalized (their `details.assignedForCompany` names the company).
    public var tenants: [Tenant]
    public var servers: [VSPCVb365Server]
    public var organizations: [VSPCVb365Organization]
    public var mappings: [VSPCCompanyMapping]
    public var vb365: [JoinedVB365Upstream]

    public init(
        vspcUpstream: String, companies: [VSPCCompany], tenants: [Tenant], servers: [VSPCVb365Server], organizations: [VSPCVb365Organization],
        mappings: [VSPCCompanyMapping], vb365: [JoinedVB365Upstream]
    ) {
        self.vspcUpstream = vspcUpstream
        self.companies = companies
        self.tenants = tenants
        self.servers = servers
        self.organizations = organizations
        self.mappings = mappings
        self.vb365 = vb365
    }
}

/// A customer: a VSPC company with its cloud tenants and its VB365 organizations.
public struct Customer: Sendable, Codable, Equatable {
    /// `{vspc upstream}.{companyUid}` (lower case).
    public var id: String
    public var name: String?
    public var status: String?
    public var resellerUid: String?
    public var cloudTenants: [CustomerTenant]
    public var organizations: [CustomerOrganization]
    public var source: Source

    public struct Source: Sendable, Codable, Equatable {
        public var upstream: String
        public var companyUid: String
    }
}

extension Customer {
    /// The members that differ from `other`'s (a change feed's `changed`), sorted.
    public func changedMembers(to other: Customer) -> [String] {
        var names: [String] = []
        if name != other.name { names.append("name") }
        if status != other.status { names.append("status") }
        if resellerUid != other.resellerUid { names.append("resellerUid") }
        if cloudTenants != other.cloudTenants { names.append("cloudTenants") }
        if organizations != other.organizations { names.append("organizations") }
        return names.sorted()
    }

    /// The order customers are listed in: by name (case-insensitive), then id.
    public func precedes(_ other: Customer) -> Bool {
        let mine = (name ?? "").lowercased()
        let theirs = (other.name ?? "").lowercased()
        return mine != theirs ? mine < theirs : id < other.id
    }
}

/// A cloud tenant of a customer, as a link to `/v1/tenants/{id}`.
public struct CustomerTenant: Sendable, Codable, Equatable {
    public var id: String
    public var name: String?
    public var links: Links

    public struct Links: Sendable, Codable, Equatable {
        public var tenant: String
    }
}

/// A VB365 organization of a customer, as VSPC maps it, and the gateway's tenant it is.
public struct CustomerOrganization: Sendable, Codable, Equatable {
    /// How the gateway's tenant was found: VSPC's organization uid equals the VB365 server's
    /// organization id (`id`), only their names agree on that server (`name`), or the gateway
    /// reads no such organization there (`mappingOnly`: known from VSPC's mapping alone).
    public enum Match: String, Sendable, Codable {
        case id
        case name
        case mappingOnly
    }

    /// VSPC's uid of the organization.
    public var vspcUid: String
    public var name: String?
    public var server: Server?
    public var match: Match
    /// The mapping that puts it in this customer.
    public var mappingUid: String?
    /// The gateway's tenant id, when the gateway reads this organization.
    public var tenant: String?
    public var links: Links

    public struct Server: Sendable, Codable, Equatable {
        public var uid: String
        public var name: String?
        /// This gateway's VB365 upstream for that server, when one is it.
        public var upstream: String?
    }

    public struct Links: Sendable, Codable, Equatable {
        public var tenant: String?
    }
}

/// What an operator must fix, each with the records involved.
public struct CustomerDrift: Sendable, Encodable, Equatable {
    /// Protected (VSPC says backed up) and mapped to no existing company: not billed to anyone.
    public var unbilledOrganizations: [Organization] = []
    /// Mappings whose organization or company no longer exists.
    public var danglingMappings: [Mapping] = []
    /// Organizations the gateway found by name only (VSPC's uid is not the server's id).
    public var nameOnlyMatches: [NameMatch] = []
    /// Cloud tenants assigned to no existing company.
    public var unassignedTenants: [CustomerTenant] = []
    /// VB365 servers of mapped organizations that no VB365 upstream of the gateway is, or whose
    /// organizations it could not read, with the customers affected.
    public var unreachableServers: [Server] = []

    public struct Organization: Sendable, Encodable, Equatable {
        public var vspcUid: String
        public var name: String?
        public var serverUid: String?
        /// The gateway's tenant id, when the gateway reads it.
        public var tenant: String?
    }

    public struct Mapping: Sendable, Encodable, Equatable {
        public enum Reason: String, Sendable, Encodable {
            case organizationGone, companyGone
        }
        public var mappingUid: String?
        public var vb365OrganizationUid: String
        public var companyUid: String
        public var reason: Reason
    }

    public struct NameMatch: Sendable, Encodable, Equatable {
        public var customer: String
        public var vspcUid: String
        public var tenant: String
        public var name: String?
    }

    public struct Server: Sendable, Encodable, Equatable {
        public enum Reason: String, Sendable, Encodable {
            /// No VB365 upstream of the gateway is this server.
            case notConfigured
            /// The upstream is configured, its organizations could not be read.
            case unreadable
        }
        public var uid: String
        public var name: String?
        public var upstream: String?
        public var reason: Reason
        public var customers: [String]
    }

    /// How many records each kind holds, by the kind's member name (the status page's counts).
    public var countsByKind: [String: Int] {
        [
            "unbilledOrganizations": unbilledOrganizations.count, "danglingMappings": danglingMappings.count,
            "nameOnlyMatches": nameOnlyMatches.count, "unassignedTenants": unassignedTenants.count,
            "unreachableServers": unreachableServers.count,
        ]
    }

    /// How many records each kind of drift holds (the status page's counts).
    public var count: Int {
        unbilledOrganizations.count + danglingMappings.count + nameOnlyMatches.count + unassignedTenants.count + unreachableServers.count
    }
}

/// The customers of one VSPC upstream and their drift, joined in time linear in the records:
/// every lookup goes through a dictionary built once, never a scan per customer.
public struct CustomerJoin: Sendable {
    /// In the order lists answer them (``Customer/precedes(_:)``).
    public var customers: [Customer]
    public var drift: CustomerDrift
    /// Each customer's position in ``customers`` by its id.
    private var positions: [String: Int] = [:]

    /// The customer with this id (lower case), if there is one.
    public func customer(id: String) -> Customer? {
        positions[id].map { customers[$0] }
    }

    public init(_ sources: CustomerSources) {
        let upstream = sources.vspcUpstream
        func customerID(_ companyUid: String) -> String { upstream + "." + companyUid.lowercased() }

        var companies: [String: Customer] = [:]
        var order: [String] = []
        for company in sources.companies {
            let uid = company.instanceUid.lowercased()
            guard companies[uid] == nil else { continue }
            order.append(uid)
            companies[uid] = Customer(
                id: customerID(uid), name: company.name, status: company.status, resellerUid: company.resellerUid?.lowercased(), cloudTenants: [],
                organizations: [], source: .init(upstream: upstream, companyUid: uid))
        }
        let organizations = Dictionary(sources.organizations.map { ($0.instanceUid.lowercased(), $0) }, uniquingKeysWith: { first, _ in first })
        let servers = Dictionary(sources.servers.map { ($0.instanceUid.lowercased(), $0) }, uniquingKeysWith: { first, _ in first })
        // Each VB365 upstream by the VSPC server it is, and its organizations by id and by name
        // (a name two organizations share on one server matches neither).
        var upstreams: [String: JoinedVB365Upstream] = [:]
        var byID: [String: [String: Tenant]] = [:]
        var byName: [String: [String: Tenant?]] = [:]
        for vb365 in sources.vb365 {
            guard let server = vb365.serverUid?.lowercased() else { continue }
            upstreams[server] = vb365
            var ids: [String: Tenant] = [:]
            var names: [String: Tenant?] = [:]
            for tenant in vb365.organizations ?? [] {
                ids[tenant.source.id.lowercased()] = tenant
                if let name = tenant.name?.lowercased() { names[name] = names[name] == nil ? tenant : .some(nil) }
            }
            byID[server] = ids
            byName[server] = names
        }

        var drift = CustomerDrift()
        var billed = Set<String>()
        var unreachable: [String: CustomerDrift.Server] = [:]
        for mapping in sources.mappings {
            let companyUid = mapping.companyUid.lowercased()
            let organizationUid = mapping.vb365OrganizationUid.lowercased()
            guard let organization = organizations[organizationUid] else {
                drift.danglingMappings.append(
                    .init(mappingUid: mapping.instanceUid, vb365OrganizationUid: organizationUid, companyUid: companyUid, reason: .organizationGone))
                continue
            }
            guard companies[companyUid] != nil else {
                drift.danglingMappings.append(
                    .init(mappingUid: mapping.instanceUid, vb365OrganizationUid: organizationUid, companyUid: companyUid, reason: .companyGone))
                continue
            }
            billed.insert(organizationUid)
            let serverUid = (organization.vb365ServerUid ?? mapping.vb365ServerUid)?.lowercased()
            var match = CustomerOrganization.Match.mappingOnly
            var tenant: Tenant?
            if let serverUid, let found = byID[serverUid]?[organizationUid] {
                match = .id
                tenant = found
            } else if let serverUid, let name = organization.name?.lowercased(), let found = byName[serverUid]?[name] ?? nil {
                match = .name
                tenant = found
            }
            let vb365 = serverUid.flatMap { upstreams[$0] }
            if let serverUid, vb365 == nil || vb365?.organizations == nil {
                var entry =
                    unreachable[serverUid]
                    ?? .init(
                        uid: serverUid, name: servers[serverUid]?.name, upstream: vb365?.name, reason: vb365 == nil ? .notConfigured : .unreadable,
                        customers: [])
                if !entry.customers.contains(customerID(companyUid)) { entry.customers.append(customerID(companyUid)) }
                unreachable[serverUid] = entry
            }
            let joined = CustomerOrganization(
                vspcUid: organizationUid, name: organization.name,
                server: serverUid.map { .init(uid: $0, name: servers[$0]?.name, upstream: vb365?.name) }, match: match,
                mappingUid: mapping.instanceUid, tenant: tenant?.id, links: .init(tenant: tenant?.selfLink))
            companies[companyUid]?.organizations.append(joined)
            if match == .name, let tenant {
                drift.nameOnlyMatches.append(.init(customer: customerID(companyUid), vspcUid: organizationUid, tenant: tenant.id, name: organization.name))
            }
        }
        for organization in sources.organizations where organization.isBackedUp == true {
            let uid = organization.instanceUid.lowercased()
            guard !billed.contains(uid) else { continue }
            let serverUid = organization.vb365ServerUid?.lowercased()
            let tenant = serverUid.flatMap { byID[$0]?[uid] } ?? organization.name.flatMap { name in serverUid.flatMap { byName[$0]?[name.lowercased()] ?? nil } }
            drift.unbilledOrganizations.append(.init(vspcUid: uid, name: organization.name, serverUid: serverUid, tenant: tenant?.id))
        }
        for tenant in sources.tenants where tenant.kind == .cloudTenant {
            let entry = CustomerTenant(id: tenant.id, name: tenant.name, links: .init(tenant: tenant.selfLink))
            if case .string(let company)? = tenant.details["assignedForCompany"], companies[company.lowercased()] != nil {
                companies[company.lowercased()]?.cloudTenants.append(entry)
            } else {
                drift.unassignedTenants.append(entry)
            }
        }
        drift.unreachableServers = unreachable.values.sorted { $0.uid < $1.uid }
        self.customers = order.compactMap { companies[$0] }.sorted { $0.precedes($1) }
        self.drift = drift
        for (position, customer) in customers.enumerated() { positions[customer.id] = position }
    }
}
