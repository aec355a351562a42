import Foundation

// What a simulated VB365 server knows of an organization's directory (users, groups, sites,
// teams), its licenses, and the server-wide repositories and proxies.
extension VB365Estate {
    // MARK: Users, groups, sites, teams

    static let people: [(display: String, login: String, type: String)] = [
        ("Adele Vance", "adele.vance", "User"), ("Alex Wilber", "alex.wilber", "User"), ("Reception", "reception", "Shared"),
    ]

    func organizationLinks(_ org: Organization, _ path: String) -> JSONValue {
        .object(["self": link("/Organizations/\(org.id)/\(path)"), "organization": link("/Organizations/\(org.id)")])
    }

    /// `RESTUser`. from v7 also `onPremisesSid` (sent for on-premises and hybrid organizations) and
    /// `office`; v8 `eTag`, `msid` (cloud and hybrid) and `assignedLicenses` (licensed cloud users).
    func user(_ org: Organization, _ number: Int) -> JSONValue {
        let person = Self.people[max(0, number - 1) % Self.people.count]
        let id = Self.id(.user, number, of: org.id)
        let kind = Self.kind(org)
        var out: [String: JSONValue] = [
            "id": .string(id),
            "displayName": .string(person.display),
            "name": .string("\(person.login)@\(Self.domain(org))"),
            "type": .string(person.type),
            "locationType": .string(Self.locationType(kind)),
            "_links": organizationLinks(org, "Users/\(id)"),
        ]
        if api >= .v7 {
            if kind != "Office365" { out["onPremisesSid"] = .string("S-1-5-21-1004336348-1177238915-682003330-\(1100 + number)") }
            out["office"] = .string("Seattle")
        }
        if api >= .v8 {
            out["eTag"] = .int(number)
            if kind != "OnPremises" {
                out["msid"] = .string(id)
                if person.type == "User" {
                    out["assignedLicenses"] = .array([
                        .object([
                            "skuId": .string("6fd2c87f-b296-42f0-b197-1e91e994b900"), "skuPartNumber": .string("ENTERPRISEPACK"),
                            "detectedSkuType": .string("Other"),
                        ])
                    ])
                }
            }
        }
        return .object(out)
    }

    /// `RESTGroup`: "All Company" (an Office 365 group; a distribution group on premises) and
    /// "IT Security". from v7 also `onPremisesSid`; v8 `eTag`, `msid`.
    func group(_ org: Organization, _ number: Int) -> JSONValue {
        let id = Self.id(.group, number, of: org.id)
        let kind = Self.kind(org)
        let domain = Self.domain(org)
        let all = number == 1
        let type = all ? (kind == "OnPremises" ? "Distribution" : "Office365") : "Security"
        var out: [String: JSONValue] = [
            "id": .string(id),
            "displayName": .string(all ? "All Company" : "IT Security"),
            "name": .string((all ? "allcompany@" : "itsecurity@") + domain),
            "managedBy": .string("Adele Vance"),
            "type": .string(type),
            "locationType": .string(Self.locationType(kind)),
            "_links": organizationLinks(org, "Groups/\(id)"),
        ]
        if type == "Office365" { out["site"] = .string("https://\(Self.label(domain)).sharepoint.com/sites/allcompany") }
        if api >= .v7, kind != "Office365" { out["onPremisesSid"] = .string("S-1-5-21-1004336348-1177238915-682003330-\(1200 + number)") }
        if api >= .v8 {
            out["eTag"] = .int(number)
            if kind != "OnPremises" { out["msid"] = .string(id) }
        }
        return .object(out)
    }

    /// `RESTSite`: the root site and `/sites/Projects` (on premises under `sharepoint.<domain>`).
    /// from v8 also `eTag`, `msid`.
    func site(_ org: Organization, _ number: Int) -> JSONValue {
        let id = Self.id(.site, number, of: org.id)
        let kind = Self.kind(org)
        let domain = Self.domain(org)
        let root = kind == "OnPremises" ? "https://sharepoint.\(domain)/" : "https://\(Self.label(domain)).sharepoint.com/"
        let title = number == 1 ? "Communication site" : "Projects"
        var out: [String: JSONValue] = [
            "id": .string(id),
            "url": .string(number == 1 ? root : root + "sites/Projects"),
            "name": .string(title),
            "title": .string(title),
            "isCloud": .bool(kind != "OnPremises"),
            "isPersonal": .bool(false),
            "isAvailable": .bool(true),
            "_links": organizationLinks(org, "Sites/\(id)"),
        ]
        if number != 1 { out["parentUrl"] = .string(root) }
        if api >= .v8 {
            out["eTag"] = .int(number)
            if kind != "OnPremises" { out["msid"] = .string(id) }
        }
        return .object(out)
    }

    /// `RESTTeam`: "Project Falcon" and "Sales". from v8 also `eTag`, `msid`.
    func team(_ org: Organization, _ number: Int) -> JSONValue {
        let id = Self.id(.team, number, of: org.id)
        let falcon = number == 1
        var out: [String: JSONValue] = [
            "id": .string(id),
            "displayName": .string(falcon ? "Project Falcon" : "Sales"),
            "description": .string(falcon ? "Falcon project team" : "Sales team"),
            "mail": .string((falcon ? "projectfalcon@" : "sales@") + Self.domain(org)),
            "_links": organizationLinks(org, "Teams/\(id)"),
        ]
        if api >= .v8 {
            out["eTag"] = .int(number)
            out["msid"] = .string(id)
        }
        return .object(out)
    }

    // MARK: Licenses

    /// `RESTLicensedUser`: user `number` of the organization (same id and name), licensed since
    /// the session of its job 1's most recent run; user 2 counts as licensed in the current month.
    func licensedUser(_ org: Organization, _ number: Int) -> JSONValue {
        let person = Self.people[max(0, number - 1) % Self.people.count]
        let id = Self.id(.user, number, of: org.id)
        return .object([
            "id": .string(id),
            "name": .string("\(person.login)@\(Self.domain(org))"),
            "isBackedUp": .bool(true),
            "lastBackupDate": .string(Self.pick(Self.sessionEnds, 1)),
            "licenseState": .string(number == 1 ? "Licensed" : "New"),
            "organizationId": .string(org.id),
            "backedUpOrganizationId": .string(org.id),
            "organizationName": .string(Self.name(org)),
            "_links": .object(["self": link("/LicensedUsers/\(id)"), "organization": link("/Organizations/\(org.id)")]),
        ])
    }

    /// `RESTOrganizationLicensingInformation`.
    func licensingInformation(_ org: Organization) -> JSONValue {
        .object([
            "licensedUsers": .int(Self.licensedUserNumbers(org).count),
            "newUsers": .int(Self.newLicensedUserCount(org)),
        ])
    }

    /// `RESTLicense`, the server's one license: used and new counts over every organization, the
    /// total a round number above them. v5/v6: `expirationDate`, `contactPerson`,
    /// `supportExpirationDate`; v7+: `licenseExpires`, `gracePeriodExpires`, `package`.
    func license(over organizations: [Organization]) -> JSONValue {
        var used = 0
        var new = 0
        for org in organizations {
            used += Self.licensedUserNumbers(org).count
            new += Self.newLicensedUserCount(org)
        }
        var out: [String: JSONValue] = [
            "licenseID": .string(Self.licenseID),
            "email": .string("licensing@provider.sim.local"),
            "status": .string("Valid"),
            "type": .string("Rental"),
            "licensedTo": .string("Simulated Service Provider"),
            "totalNumber": .int((used / 1000 + 1) * 1000),
            "usedNumber": .int(used),
            "newNumber": .int(new),
            "supportID": .string("04871234"),
        ]
        if api >= .v7 {
            out["licenseExpires"] = .string("2027-12-31T00:00:00.0000000Z")
            out["gracePeriodExpires"] = .string("2028-01-30T00:00:00.0000000Z")
            out["package"] = .string("Suite")
        } else {
            out["expirationDate"] = .string("2027-12-31T00:00:00.0000000Z")
            out["contactPerson"] = .string("Sim Admin")
            out["supportExpirationDate"] = .string("2027-12-31T00:00:00.0000000Z")
        }
        return .object(out)
    }

    // MARK: Infrastructure

    /// `RESTBackupRepository`: "Primary Repository" (item-level, three years; job 1's) behind
    /// proxy 1 and "Archive Repository" (snapshot-based, kept forever; job 2's) behind proxy 2.
    /// From v8 on also `isOutdated`, `isIndexed`, `isMigrationLocked`,
    /// `isOutOfOrder`. `encryptionKeyId` is an id, not a key, and is not sent (no encryption).
    func repositories() -> [JSONValue] {
        (0..<Self.repositoryIDs.count).map { index -> JSONValue in
            let id = Self.repositoryIDs[index]
            let primary = index == 0
            var out: [String: JSONValue] = [
                "id": .string(id),
                "name": .string(primary ? "Primary Repository" : "Archive Repository"),
                "description": .string(primary ? "Item-level backups, kept three years." : "Snapshot-based backups, kept forever."),
                "path": .string(primary ? "D:\\VeeamRepository\\Primary" : "E:\\VeeamRepository\\Archive"),
                "retentionType": .string(primary ? "ItemLevel" : "SnapshotBased"),
                "retentionPeriodType": .string("Yearly"),
                "yearlyRetentionPeriod": .string(primary ? "Years3" : "Keep"),
                "retentionFrequencyType": .string(primary ? "Daily" : "Monthly"),
                "proxyId": .string(Self.proxyIDs[index]),
                "isLongTerm": .bool(false),
                "capacityBytes": .int(primary ? 4_398_046_511_104 : 10_995_116_277_760),
                "freeSpaceBytes": .int(primary ? 1_649_267_441_664 : 8_796_093_022_208),
                "objectStorageEncryptionEnabled": .bool(false),
                "isOutOfSync": .bool(false),
                "_links": .object(["self": link("/BackupRepositories/\(id)"), "proxy": link("/Proxies/\(Self.proxyIDs[index])")]),
            ]
            if primary {
                out["dailyTime"] = .string("00:00:00")
                out["dailyType"] = .string("Everyday")
            } else {
                out["monthlyTime"] = .string("00:00:00")
                out["monthlyDaynumber"] = .string("Last")
                out["monthlyDayofweek"] = .string("Saturday")
            }
            if api >= .v8 {
                out["isOutdated"] = .bool(false)
                out["isIndexed"] = .bool(true)
                out["isMigrationLocked"] = .bool(false)
                out["isOutOfOrder"] = .bool(false)
            }
            return .object(out)
        }
    }

    /// `RESTProxy`: `proxy-01.sim.local` (local, on the backup server) and `proxy-02.sim.local`
    /// (domain). v6: `threadsNumber`; from v7 also `fqdn`; from v8 without `threadsNumber` and with the
    /// operating system, maintenance state, usage, version, service account and roles.
    func proxies() -> [JSONValue] {
        (0..<Self.proxyIDs.count).map { index -> JSONValue in
            let id = Self.proxyIDs[index]
            let host = index == 0 ? "proxy-01" : "proxy-02"
            var out: [String: JSONValue] = [
                "id": .string(id),
                "type": .string(index == 0 ? "Local" : "Domain"),
                "hostName": .string(host),
                "description": .string(index == 0 ? "Backup proxy on the backup server" : "Backup proxy for archives"),
                "port": .int(9193),
                "useInternetProxy": .bool(false),
                "enableNetworkThrottling": .bool(false),
                "status": .string("Online"),
                "_links": .object(["self": link("/Proxies/\(id)")]),
            ]
            if api < .v8 { out["threadsNumber"] = .int(64) }
            if api >= .v7 { out["fqdn"] = .string(host + ".sim.local") }
            if api >= .v8 {
                out["operatingSystem"] = .string("Windows")
                out["maintenanceModeState"] = .string("Disabled")
                out["cpuUsagePercent"] = .double(index == 0 ? 12.5 : 3.25)
                out["memoryUsagePercent"] = .double(index == 0 ? 41.5 : 22.0)
                out["version"] = .string(VB365Routes.build(api))
                out["role"] = .array([.string("Processor")])
                if index == 1 { out["serviceAccount"] = .string("TECH\\svc-vbo-proxy") }
            }
            return .object(out)
        }
    }
}
