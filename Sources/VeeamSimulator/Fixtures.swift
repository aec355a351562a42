import Foundation

/// The records the simulator serves, read from raw JSON (`config/simulator/*.json`) or generated.
public struct SimulatorFixtures: Sendable {
    /// A login the simulator accepts.
    public struct Account: Sendable, Equatable {
        public var username: String
        public var password: String
        public init(username: String, password: String) {
            self.username = username
            self.password = password
        }
    }

    /// A VB365 organization and the account it was added with.
    public struct Organization: Sendable {
        public var account: Account
        /// What `GET /v5/Organization` answers, as written in the fixture.
        public var body: JSONValue
        /// Extra fields of the administrator's view (`/v5/Organizations`).
        public var adminView: JSONValue
        public var id: String { body["id"]?.stringValue ?? "" }
    }

    /// A VSPC user.
    public struct VSPCUser: Sendable {
        public var account: Account
        public var role: String
        public var instanceUid: String
        public var organizationUid: String
    }

    /// How VSPC sees one VB365 organization (`vspc.json`, `vb365Organizations`). An organization
    /// not listed keeps its id in VSPC; a generated one is mapped to its generated company; any
    /// other is unmapped.
    public struct VSPCOrganizationView: Sendable, Equatable {
        /// The VB365 organization's `id`.
        public var organizationId: String
        /// VSPC's own uid for it when it differs from the VB365 id (then it matches by name only).
        public var instanceUid: String?
        /// The company its mapping names (which may not exist: a dangling mapping).
        public var companyUid: String?
        public init(organizationId: String, instanceUid: String? = nil, companyUid: String? = nil) {
            self.organizationId = organizationId
            self.instanceUid = instanceUid
            self.companyUid = companyUid
        }
    }

    public var vb365Administrators: [Account]
    public var organizations: [Organization]
    public var vspcUsers: [VSPCUser]
    /// `CloudTenant` objects, as written in the fixture.
    public var tenants: [JSONValue]
    /// `Company` objects, as written in the fixture (the generated ones are built on demand).
    public var companies: [JSONValue] = []
    /// VSPC's view of the VB365 organizations, where it is not the default.
    public var vspcOrganizationViews: [VSPCOrganizationView] = []
    /// `BackupServerJob` objects, as written in the fixture.
    public var backupServerJobs: [JSONValue] = []
    /// `ActiveAlarm` objects, as written in the fixture.
    public var activeAlarms: [JSONValue] = []
    /// What VSPC knows beyond the VB365 server the simulator plays, as written in the fixture
    /// (`Vb365Server`, `Vb365Organization`, `Vb365OrganizationToCompanyMapping` objects): listed
    /// after the played server's own. The fixture's give a server no gateway upstream is, its
    /// organization, and a mapping whose organization VSPC no longer lists.
    public var otherVb365Servers: [JSONValue] = []
    public var otherVb365Organizations: [JSONValue] = []
    public var otherCompanyMappings: [JSONValue] = []
    /// How many organizations ``generate(count:tenants:companies:servers:shard:)`` added (numbered from 1).
    public var generatedCount = 0
    /// How many tenants and companies it added (numbered from 1).
    public var generatedTenants = 0
    public var generatedCompanies = 0
    /// How many VB365 servers VSPC manages (the played one is server 0; generated organization
    /// `i` is on server `(i - 1) % vb365Servers`), and which of them this process plays.
    public var vb365Servers = 1
    public var vb365Shard = 0
    /// The played server's organizations when it is not every organization (a shard of a
    /// generated estate); nil: all of ``organizations``.
    var shardOrganizations: [Organization]?

    /// The organizations the VB365 server this process plays holds. ``organizations`` is what
    /// VSPC knows of over all its servers.
    public var vb365Organizations: [Organization] { shardOrganizations ?? organizations }

    /// The VB365 server (0 ..< ``vb365Servers``) an organization is on: a generated one's by its
    /// number, the fixture's on the played server's first.
    public func server(of organization: Organization) -> Int {
        guard let index = Self.generatedIndex(organization.id, kind: "00000000"), index <= generatedCount else { return 0 }
        return (index - 1) % max(1, vb365Servers)
    }

    /// The generated company a generated organization or tenant `index` belongs to.
    public func generatedCompany(of index: Int) -> Int? {
        generatedCompanies > 0 ? (index - 1) % generatedCompanies + 1 : nil
    }

    /// Fixtures from values (empty by default); see ``load(directory:)`` for the files.
    public init(
        vb365Administrators: [Account] = [], organizations: [Organization] = [], vspcUsers: [VSPCUser] = [], tenants: [JSONValue] = []
    ) {
        self.vb365Administrators = vb365Administrators
        self.organizations = organizations
        self.vspcUsers = vspcUsers
        self.tenants = tenants
    }

    /// Errors reading fixtures name the file and what is wrong.
    public struct LoadError: Error, CustomStringConvertible {
        public var file: String
        public var reason: String
        public var description: String { "\(file): \(reason)" }
    }

    /// Reads `vb365.json` and `vspc.json` from a directory.
    public static func load(directory: String) throws -> SimulatorFixtures {
        let vb365File = directory + "/vb365.json"
        let vspcFile = directory + "/vspc.json"
        return try parse(vb365: try read(vb365File), vb365File: vb365File, vspc: try read(vspcFile), vspcFile: vspcFile)
    }

    /// The estate compiled into the simulator (config/simulator links to the same files), so a
    /// simulator or a demo started anywhere plays it.
    public static func builtIn() throws -> SimulatorFixtures {
        try parse(
            vb365: try decode(Data(PackageResources.vb365_json), file: "vb365.json (built in)"), vb365File: "vb365.json (built in)",
            vspc: try decode(Data(PackageResources.vspc_json), file: "vspc.json (built in)"), vspcFile: "vspc.json (built in)")
    }

    /// The fixtures in two parsed documents; `vb365File` and `vspcFile` name them in errors.
    static func parse(vb365: JSONValue, vb365File: String, vspc: JSONValue, vspcFile: String) throws -> SimulatorFixtures {
        var fixtures = SimulatorFixtures(vb365Administrators: [], organizations: [], vspcUsers: [], tenants: [])
        for admin in vb365["administrators"]?.arrayValue ?? [] {
            fixtures.vb365Administrators.append(try account(admin, file: vb365File))
        }
        for entry in vb365["organizations"]?.arrayValue ?? [] {
            guard let body = entry["organization"], body["id"]?.stringValue != nil else {
                throw LoadError(file: vb365File, reason: "an organization has no organization.id")
            }
            fixtures.organizations.append(
                Organization(account: try account(entry["account"], file: vb365File), body: body, adminView: entry["adminView"] ?? .object([:]))
            )
        }
        for user in vspc["users"]?.arrayValue ?? [] {
            guard let role = user["role"]?.stringValue else { throw LoadError(file: vspcFile, reason: "a user has no role") }
            fixtures.vspcUsers.append(
                VSPCUser(
                    account: try account(user, file: vspcFile),
                    role: role,
                    instanceUid: user["instanceUid"]?.stringValue ?? UUID().uuidString.lowercased(),
                    organizationUid: user["organizationUid"]?.stringValue ?? UUID().uuidString.lowercased()
                )
            )
        }
        for tenant in vspc["tenants"]?.arrayValue ?? [] {
            guard tenant["instanceUid"]?.stringValue != nil else {
                throw LoadError(file: vspcFile, reason: "a tenant has no instanceUid")
            }
            fixtures.tenants.append(tenant)
        }
        for company in vspc["companies"]?.arrayValue ?? [] {
            guard company["instanceUid"]?.stringValue != nil else {
                throw LoadError(file: vspcFile, reason: "a company has no instanceUid")
            }
            fixtures.companies.append(company)
        }
        for view in vspc["vb365Organizations"]?.arrayValue ?? [] {
            guard let organizationId = view["organizationId"]?.stringValue else {
                throw LoadError(file: vspcFile, reason: "a vb365Organizations entry has no organizationId")
            }
            fixtures.vspcOrganizationViews.append(
                VSPCOrganizationView(
                    organizationId: organizationId, instanceUid: view["instanceUid"]?.stringValue, companyUid: view["companyUid"]?.stringValue))
        }
        fixtures.backupServerJobs = vspc["backupServerJobs"]?.arrayValue ?? []
        fixtures.activeAlarms = vspc["activeAlarms"]?.arrayValue ?? []
        for (key, keyPath) in [("otherVb365Servers", \SimulatorFixtures.otherVb365Servers), ("otherVb365Organizations", \.otherVb365Organizations)] {
            let records = vspc[key]?.arrayValue ?? []
            guard records.allSatisfy({ $0["instanceUid"]?.stringValue != nil }) else {
                throw LoadError(file: vspcFile, reason: "an entry of \(key) has no instanceUid")
            }
            fixtures[keyPath: keyPath] = records
        }
        fixtures.otherCompanyMappings = vspc["otherCompanyMappings"]?.arrayValue ?? []
        guard fixtures.otherCompanyMappings.allSatisfy({ $0["vb365OrganizationUid"]?.stringValue != nil && $0["companyUid"]?.stringValue != nil }) else {
            throw LoadError(file: vspcFile, reason: "an entry of otherCompanyMappings has no vb365OrganizationUid or companyUid")
        }
        return fixtures
    }

    /// Adds `count` generated organizations (accounts `backup@org-NNNNN.onmicrosoft.com`,
    /// password `Org-NNNNN-Pass`) and `count` generated tenants (`Tenant NNNNN`), alternating the
    /// old and new enum spellings and using seven fractional digits in timestamps. Organization
    /// `00000000-0000-4000-8000-0000000NNNNN`, tenant `10000000-…-0000000NNNNN` and VSPC company
    /// `20000000-…-0000000NNNNN` ("Company NNNNN", built on demand) belong together: the tenant is
    /// assigned to the company, the organization mapped to it.
    ///
    /// `tenants` and `companies` default to `count`; generated tenant and organization `i`
    /// belong to company `(i - 1) % companies + 1`. With `servers` above 1 the organizations are
    /// spread over that many VB365 servers and this process plays server `shard` (the
    /// fixture's organizations are on server 0).
    public mutating func generate(count: Int, tenants: Int? = nil, companies: Int? = nil, servers: Int = 1, shard: Int = 0) {
        vb365Servers = max(1, servers)
        vb365Shard = min(max(0, shard), vb365Servers - 1)
        generatedCompanies = max(generatedCompanies, companies ?? count)
        let tenantCount = tenants ?? count
        for i in stride(from: generatedTenants + 1, through: tenantCount, by: 1) { self.tenants.append(generatedTenant(i)) }
        generatedTenants = max(generatedTenants, tenantCount)
        defer { reshard() }
        guard count > generatedCount else { return }
        let first = generatedCount + 1
        generatedCount = count
        for i in first...count {
            let n = String(format: "%05d", i)
            let id = String(format: "00000000-0000-4000-8000-%012d", i)
            let stamp = Self.generatedStamp(i)
            let org = JSONValue.object([
                "id": .string(id),
                "name": .string("org-\(n).onmicrosoft.com"),
                "type": .string(i % 2 == 0 ? "Office365" : "office365"),
                "isBackedup": .bool(i % 3 != 0),
                "firstBackuptime": i % 3 == 0 ? .null : .string(stamp),
                "lastBackuptime": i % 3 == 0 ? .null : .string(stamp),
                "_actions": .object([
                    "explore": .object(["uri": .string("https://vb365.sim.local:4443/v5/organization/action"), "method": .string("POST")])
                ]),
            ])
            organizations.append(
                Organization(
                    account: Account(username: "backup@org-\(n).onmicrosoft.com", password: "Org-\(n)-Pass"),
                    body: org,
                    adminView: .object(["region": .string("Worldwide"), "officeName": .string("org-\(n)")])
                )
            )
        }
    }

    /// Recomputes the played server's organizations (``vb365Organizations``) from
    /// ``organizations``: after generating, and after every change of the estate while running.
    mutating func reshard() {
        shardOrganizations = vb365Servers == 1 ? nil : organizations.filter { server(of: $0) == vb365Shard }
    }

    /// Generated tenant `i` ("Tenant NNNNN"), assigned to its generated company.
    func generatedTenant(_ i: Int) -> JSONValue {
        let n = String(format: "%05d", i)
        return .object(
            Self.tenantMembers(
                uid: String(format: "10000000-0000-4000-8000-%012d", i), name: "Tenant \(n)",
                description: i % 4 == 0 ? nil : "Generated tenant \(n)", hashedPassword: "generated-hash-\(n)",
                type: i % 2 == 0 ? "General" : "general", lastActive: Self.generatedStamp(i),
                gatewaySelectionType: i % 2 == 0 ? "GatewayPool" : "gatewayPool", isEnabled: i % 5 != 0, maxConcurrentTask: 1 + i % 8,
                company: generatedCompany(of: i).map { Self.generatedUid("20000000", $0) }))
    }

    /// Every member a tenant the simulator makes has (generated, or created through the admin
    /// routes), with the values that vary between them given.
    static func tenantMembers(
        uid: String, name: String, description: String?, hashedPassword: String, type: String, lastActive: String?, gatewaySelectionType: String,
        isEnabled: Bool, maxConcurrentTask: Int, company: String?
    ) -> [String: JSONValue] {
        [
            "instanceUid": .string(uid),
            "name": .string(name),
            "description": description.map(JSONValue.string) ?? .null,
            "hashedPassword": .string(hashedPassword),
            "type": .string(type),
            "lastActive": lastActive.map(JSONValue.string) ?? .null,
            "backupServerUid": .string("3b5be228-b14d-421a-9a0e-a1a434e2195c"),
            "gatewaySelectionType": .string(gatewaySelectionType),
            "isEnabled": .bool(isEnabled),
            "isLeaseExpirationEnabled": .bool(false),
            "leaseExpirationDate": .null,
            "isBackupProtectionEnabled": .bool(false),
            "backupProtectionPeriod": .null,
            "isGatewayFailoverEnabled": .bool(false),
            "gatewayPoolsUids": .array([.string("e1135752-d497-43e0-8857-8a0c3a262e2e")]),
            "isThrottlingEnabled": .bool(false),
            "throttlingValue": .null,
            "throttlingUnit": .null,
            "maxConcurrentTask": .int(maxConcurrentTask),
            "isBackupResourcesEnabled": .bool(true),
            "isNativeReplicationResourcesEnabled": .bool(false),
            "isVcdReplicationResourcesEnabled": .bool(false),
            "assignedForCompany": company.map(JSONValue.string) ?? .null,
        ]
    }

    /// The backup and activity time of generated object `i`.
    static func generatedStamp(_ i: Int) -> String {
        String(format: "2026-%02d-%02dT%02d:%02d:%02d.%07dZ", 1 + i % 12, 1 + i % 28, i % 24, i % 60, (i * 7) % 60, (i * 7_654_321) % 10_000_000)
    }

    /// The uid of generated object `index` whose kind the first eight digits name: `00000000`
    /// organizations, `10000000` tenants, `20000000` companies, `30000000` VSPC mappings.
    static func generatedUid(_ kind: String, _ index: Int) -> String {
        kind + String(format: "-0000-4000-8000-%012d", index)
    }

    /// The index of a generated uid of `kind` (see ``generatedUid(_:_:)``), if `uid` is one.
    static func generatedIndex(_ uid: String, kind: String) -> Int? {
        let head = kind + "-0000-4000-8000-"
        let lower = uid.lowercased()
        guard lower.count == 36, lower.hasPrefix(head) else { return nil }
        let digits = lower.dropFirst(head.count)
        guard digits.allSatisfy({ $0.isASCII && $0.isNumber }), let index = Int(digits), index > 0 else { return nil }
        return index
    }

    private static func read(_ path: String) throws -> JSONValue {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LoadError(file: path, reason: "cannot read the file")
        }
        return try decode(data, file: path)
    }

    private static func decode(_ data: Data, file: String) throws -> JSONValue {
        do {
            return try JSONValue.parse(data)
        } catch {
            throw LoadError(file: file, reason: "not valid JSON: \(error)")
        }
    }

    private static func account(_ value: JSONValue?, file: String) throws -> Account {
        guard let username = value?["username"]?.stringValue, let password = value?["password"]?.stringValue else {
            throw LoadError(file: file, reason: "an account needs username and password")
        }
        return Account(username: username, password: password)
    }
}

extension JSONValue {
    var arrayValue: [JSONValue]? {
        if case .array(let items) = self { return items }
        return nil
    }
}
