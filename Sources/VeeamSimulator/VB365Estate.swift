import Foundation

/// What a simulated VB365 server holds besides its organizations, built on demand from each
/// organization fixture (so the generated estate costs nothing until read) and shaped as this
/// version's spec says (v5 as v6: there is no published v5 spec). Per organization: two backup
/// jobs, one session per job, one restore point per job of a backed-up organization, three users,
/// two groups, two sites, two teams (none on premises) and, for a backed-up organization, two
/// licensed users. Server-wide: two repositories, two proxies and the license. See
/// docs/simulator.md, "Pass-through collections", for the ids and every inference.
struct VB365Estate: Sendable {
    typealias Organization = SimulatorFixtures.Organization

    let api: SimulatorVB365API

    private var prefix: String { "/" + api.rawValue }

    // MARK: Identities

    /// An object's id is its organization's id (lower case) with the first eight hex digits
    /// replaced by the kind's seven and the object's number (from 1): job 1 of
    /// `cbc52c37-df7f-4b03-98f3-036e7d4b3127` is `0b000001-df7f-4b03-98f3-036e7d4b3127`, its
    /// session `5e000001-df7f-…`. Unique as long as organization ids differ after their first
    /// eight digits (the fixtures' and the generated ones do).
    enum Kind: String, Sendable {
        case job = "0b00000"
        case session = "5e00000"
        case restorePoint = "4e00000"
        case user = "0a00000"
        case group = "0600000"
        case site = "0500000"
        case team = "0700000"
    }

    static func id(_ kind: Kind, _ number: Int, of organizationID: String) -> String {
        let lower = organizationID.lowercased()
        let tail = lower.count > 8 ? String(lower.dropFirst(8)) : "-" + lower
        return kind.rawValue + String(number) + tail
    }

    /// An object found by its id: its organization and its number there.
    struct Located: Sendable {
        var organization: Organization
        var number: Int
    }

    /// The organization (among `organizations`) and number of the object of `kind` whose id is `id`.
    static func locate(_ kind: Kind, id: String, numbers: ClosedRange<Int>, in organizations: [Organization]) -> Located? {
        let lower = id.lowercased()
        guard lower.count > 8 else { return nil }
        let head = lower.prefix(8)
        guard head.hasPrefix(kind.rawValue), let number = Int(head.dropFirst(kind.rawValue.count)), numbers.contains(number) else {
            return nil
        }
        let tail = String(lower.dropFirst(8))
        guard let organization = organizations.first(where: { $0.id.count == lower.count && $0.id.dropFirst(8).lowercased() == tail }) else {
            return nil
        }
        return Located(organization: organization, number: number)
    }

    static let repositoryIDs = ["8b7a6c5d-0001-4e2f-9a3b-000000000001", "8b7a6c5d-0002-4e2f-9a3b-000000000002"]
    static let proxyIDs = ["9c1d2e3f-0001-4a5b-8c6d-000000000001", "9c1d2e3f-0002-4a5b-8c6d-000000000002"]
    static let licenseID = "1c3e5a7b-9d0f-4e2a-8b4c-6d8e0f1a2b3c"

    // MARK: What an organization has

    static func isBackedUp(_ org: Organization) -> Bool { org.body["isBackedup"] == .bool(true) }

    /// `Office365`, `OnPremises` or `Hybrid` (the fixture's spelling made canonical).
    static func kind(_ org: Organization) -> String { VB365Routes.organizationType(org.body["type"]?.stringValue ?? "") }

    static func name(_ org: Organization) -> String { org.body["name"]?.stringValue ?? org.id }

    static let jobNumbers = 1..<3
    static let userNumbers = 1..<4
    static let groupNumbers = 1..<3
    static let siteNumbers = 1..<3

    /// A restore point per job, for an organization that has been backed up.
    static func restorePointNumbers(_ org: Organization) -> Range<Int> { isBackedUp(org) ? jobNumbers : 1..<1 }
    /// Users 1 and 2 hold licenses once backed up (user 3 is a shared mailbox: no license).
    static func licensedUserNumbers(_ org: Organization) -> Range<Int> { isBackedUp(org) ? 1..<3 : 1..<1 }
    /// Of the licensed users, user 2 is new this month.
    static func newLicensedUserCount(_ org: Organization) -> Int { isBackedUp(org) ? 1 : 0 }
    /// Teams exist in Microsoft 365 only: none for an on-premises organization.
    static func teamNumbers(_ org: Organization) -> Range<Int> { kind(org) == "OnPremises" ? 1..<1 : 1..<3 }

    /// The mail domain: the organization's name when it reads as one (`abc.onmicrosoft.com`,
    /// `contoso.local`), else its `officeName` (or name) as a `.onmicrosoft.com` label.
    static func domain(_ org: Organization) -> String {
        let name = Self.name(org).lowercased()
        if name.contains("."), !name.contains(" "), name.allSatisfy({ $0.isASCII }) { return name }
        let office = (org.adminView["officeName"]?.stringValue ?? name).lowercased()
        let label = String(office.filter { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") })
        return (label.isEmpty ? "organization" : label) + ".onmicrosoft.com"
    }

    private static func label(_ domain: String) -> String { String(domain.prefix { $0 != "." }) }

    private static func locationType(_ kind: String) -> String {
        switch kind {
        case "OnPremises": "OnPremises"
        case "Hybrid": "Hybrid"
        default: "Cloud"
        }
    }

    // MARK: Times and outcomes (fixed: every job last ran on 24 November 2026)

    private static let sessionStarts = ["2026-11-24T02:00:00.0000000Z", "2026-11-24T04:00:00.0000000Z"]
    private static let sessionEnds = ["2026-11-24T02:14:37.1234567Z", "2026-11-24T04:06:12.7654321Z"]
    private static let nextRuns = ["2026-11-25T02:00:00.0000000Z", "2026-11-24T08:00:00.0000000Z"]

    private static func pick(_ values: [String], _ number: Int) -> String {
        values[max(0, number - 1) % values.count]
    }

    /// A backed-up organization's job 1 succeeded and job 2 warned; a never backed-up
    /// organization's jobs both failed.
    static func status(_ org: Organization, job number: Int) -> String {
        guard isBackedUp(org) else { return "Failed" }
        return number == 1 ? "Success" : "Warning"
    }

    private func link(_ path: String) -> JSONValue { .object(["href": .string(prefix + path)]) }

    // MARK: Jobs, sessions, restore points

    /// `RESTJob`. v6 (and v5): no `organizationId` (the `organization` link names it); v7 adds
    /// `lastBackup`; v8 adds `organizationId` and `eTag`. No member of any version's `RESTJob`
    /// is a secret.
    func job(_ org: Organization, _ number: Int) -> JSONValue {
        let id = Self.id(.job, number, of: org.id)
        let entire = number == 1
        let repository = Self.repositoryIDs[entire ? 0 : 1]
        var schedule: [String: JSONValue] = [
            "scheduleEnabled": .bool(true),
            "backupWindowEnabled": .bool(false),
            "retryEnabled": .bool(true),
            "retryNumber": .int(3),
            "retryWaitInterval": .int(10),
        ]
        if entire {
            schedule["type"] = .string("Daily")
            schedule["dailyType"] = .string("Everyday")
            schedule["dailyTime"] = .string("02:00:00")
        } else {
            schedule["type"] = .string("Periodically")
            schedule["periodicallyEvery"] = .string("Hours4")
        }
        if api >= .v7 { schedule["periodicallyWindowEnabled"] = .bool(false) }
        var out: [String: JSONValue] = [
            "id": .string(id),
            "name": .string(Self.name(org) + (entire ? " - Entire organization" : " - Selected items")),
            "description": .string(entire ? "Every mailbox, site and team, daily at 02:00." : "Selected mailboxes and sites, every four hours."),
            "backupType": .string(entire ? "EntireOrganization" : "SelectedItems"),
            "schedulePolicy": .object(schedule),
            "repositoryId": .string(repository),
            "lastRun": .string(Self.pick(Self.sessionStarts, number)),
            "nextRun": .string(Self.pick(Self.nextRuns, number)),
            "isEnabled": .bool(true),
            "lastStatus": .string(Self.status(org, job: number)),
            "_links": .object([
                "self": link("/Jobs/\(id)"),
                "organization": link("/Organizations/\(org.id)"),
                "backupRepository": link("/BackupRepositories/\(repository)"),
            ]),
        ]
        if api >= .v7 { out["lastBackup"] = Self.isBackedUp(org) ? .string(Self.pick(Self.sessionEnds, number)) : .null }
        if api >= .v8 {
            out["organizationId"] = .string(org.id)
            out["eTag"] = .int(number)
        }
        return .object(out)
    }

    /// `RESTJobSession`: the last session of job `number`. v7 adds `repositoryId`,
    /// `mainSessionId`, `jobWillBeRetried`, `jobType`; v8 `jobId`, `jobSessionConfigType`,
    /// `eTag`, `proxyId`.
    func session(_ org: Organization, _ number: Int) -> JSONValue {
        let id = Self.id(.session, number, of: org.id)
        let jobID = Self.id(.job, number, of: org.id)
        let backedUp = Self.isBackedUp(org)
        let details: String
        if !backedUp {
            details = "Failed to connect to the organization."
        } else {
            details = number == 1 ? "Job finished successfully." : "Job finished with warnings: 1 item was skipped."
        }
        let statistics: [String: JSONValue] = [
            "processingRateBytesPS": .int(backedUp ? 5_242_880 : 0),
            "processingRateItemsPS": .int(backedUp ? 40 : 0),
            "readRateBytesPS": .int(backedUp ? 6_291_456 : 0),
            "writeRateBytesPS": .int(backedUp ? 4_194_304 : 0),
            "transferredDataBytes": .int(backedUp ? 1_073_741_824 * number : 0),
            "processedObjects": .int(backedUp ? 1250 / number : 0),
            "bottleneck": .string(backedUp ? "Source" : "NA"),
        ]
        var out: [String: JSONValue] = [
            "id": .string(id),
            "details": .string(details),
            "creationTime": .string(Self.pick(Self.sessionStarts, number)),
            "endTime": .string(Self.pick(Self.sessionEnds, number)),
            "retryCount": .int(backedUp ? 0 : 3),
            "progress": .int(100),
            "status": .string(Self.status(org, job: number)),
            "statistics": .object(statistics),
            "_links": .object(["self": link("/JobSessions/\(id)"), "job": link("/Jobs/\(jobID)")]),
        ]
        if api >= .v7 {
            out["repositoryId"] = .string(Self.repositoryIDs[number == 1 ? 0 : 1])
            out["mainSessionId"] = .string(id)
            out["jobWillBeRetried"] = .bool(false)
            out["jobType"] = .string("Backup")
        }
        if api >= .v8 {
            out["jobId"] = .string(jobID)
            out["jobSessionConfigType"] = .string("Incremental")
            out["eTag"] = .int(number)
            out["proxyId"] = .string(Self.proxyIDs[number == 1 ? 0 : 1])
        }
        return .object(out)
    }

    /// `RESTRestorePoint` of job `number` (backed-up organizations only). v7 adds `isDeleted`,
    /// `isCopy`; v8 `eTag`, `objectsEtag`.
    func restorePoint(_ org: Organization, _ number: Int) -> JSONValue {
        let id = Self.id(.restorePoint, number, of: org.id)
        let jobID = Self.id(.job, number, of: org.id)
        let repository = Self.repositoryIDs[number == 1 ? 0 : 1]
        let cloud = Self.kind(org) != "OnPremises"
        var out: [String: JSONValue] = [
            "id": .string(id),
            "repositoryId": .string(repository),
            "backupTime": .string(Self.pick(Self.sessionEnds, number)),
            "jobId": .string(jobID),
            "organizationId": .string(org.id),
            "isExchange": .bool(number == 1),
            "isSharePoint": .bool(true),
            "isOneDrive": .bool(number == 1 && cloud),
            "isTeams": .bool(number == 2 && cloud),
            "isLongTermCopy": .bool(false),
            "isRetrieved": .bool(false),
            "_links": .object([
                "self": link("/RestorePoints/\(id)"),
                "job": link("/Jobs/\(jobID)"),
                "organization": link("/Organizations/\(org.id)"),
                "backupRepository": link("/BackupRepositories/\(repository)"),
            ]),
        ]
        if api >= .v7 {
            out["isDeleted"] = .bool(false)
            out["isCopy"] = .bool(false)
        }
        if api >= .v8 {
            out["eTag"] = .int(number)
            out["objectsEtag"] = .int(number)
        }
        return .object(out)
    }

    // MARK: Users, groups, sites, teams

    private static let people: [(display: String, login: String, type: String)] = [
        ("Adele Vance", "adele.vance", "User"), ("Alex Wilber", "alex.wilber", "User"), ("Reception", "reception", "Shared"),
    ]

    private func organizationLinks(_ org: Organization, _ path: String) -> JSONValue {
        .object(["self": link("/Organizations/\(org.id)/\(path)"), "organization": link("/Organizations/\(org.id)")])
    }

    /// `RESTUser`. v7 adds `onPremisesSid` (sent for on-premises and hybrid organizations) and
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
    /// "IT Security". v7 adds `onPremisesSid`; v8 `eTag`, `msid`.
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
    /// v8 adds `eTag`, `msid`.
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

    /// `RESTTeam`: "Project Falcon" and "Sales". v8 adds `eTag`, `msid`.
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
    /// its job 1's last session; user 2 is new this month.
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
    /// v8 drops nothing sent here and adds `isOutdated`, `isIndexed`, `isMigrationLocked`,
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
    /// (domain). v6: `threadsNumber`; v7 adds `fqdn`; v8 drops `threadsNumber` and adds the
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
